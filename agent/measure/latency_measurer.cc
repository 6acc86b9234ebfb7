#include "agent/measure/latency_measurer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

absl::Status Validate(const DeviceConfig& config, const MeasurementOptions& options,
                      const MeasurementEnv& env) {
  if (config.batch < 1 || config.threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", config.batch, " and threads ",
                                                   config.threads, " must be at least 1"));
  }
  if (config.precision != "fp32") {
    return absl::InvalidArgumentError(
        absl::StrCat("precision \"", config.precision, "\" not supported; only fp32"));
  }
  if (options.warmups < 0 || options.min_repeats < 1 || options.max_repeats < options.min_repeats ||
      !(options.max_seconds > 0) || !(options.target_median_cv > 0) ||
      !(options.warmup_seconds >= 0) || !(options.min_seconds >= 0) || options.reference_runs < 0 ||
      !(options.interference_threshold > 1) || options.interference_retries < 0 ||
      !(options.interference_wait_seconds >= 0) || options.independent_measurements < 1 ||
      options.max_independent_measurements < options.independent_measurements ||
      !(options.agreement_tolerance >= 0)) {
    return absl::InvalidArgumentError(
        "measurement options need warmups >= 0, warmup_seconds >= 0, 1 <= min_repeats <= "
        "max_repeats, min_seconds >= 0, max_seconds > 0, target_median_cv > 0, "
        "reference_runs >= 0, interference_threshold > 1, interference_retries >= 0, "
        "interference_wait_seconds >= 0, 1 <= independent_measurements <= "
        "max_independent_measurements and agreement_tolerance >= 0");
  }
  if (options.clock != "auto" && options.clock != "wall") {
    return absl::InvalidArgumentError(
        absl::StrCat("measurement clock \"", options.clock, "\" is not auto or wall"));
  }
  if (env.wall == nullptr) return absl::InvalidArgumentError("measuring needs a wall clock");
  if (options.pin_threads && env.pinner == nullptr) {
    return absl::InvalidArgumentError("pin_threads needs a ThreadPinner");
  }
  return absl::OkStatus();
}

// Undoes a pin on every way out.
class PinScope {
 public:
  explicit PinScope(ThreadPinner* pinner) : pinner_(pinner) {}
  ~PinScope() {
    if (pinner_ != nullptr) pinner_->Unpin();
  }

 private:
  ThreadPinner* pinner_;
};

double Median(std::vector<double> v) { return ComputeLatencyStats(v).median_ms; }

// One attempt: warm-up, timed runs, statistics. `attempt` gets the samples and the
// run counters of the protocol.
struct Attempt {
  std::vector<double> samples_ms;  // kept runs
  std::vector<double> wall_ms;     // the same runs on the wall clock
  std::vector<double> raw_ms;      // kept runs before the reference correction
  int warmup_runs = 0;
  int timed_runs = 0, preempted_runs = 0, excluded_runs = 0, reported = 0;
  std::string stop_reason;
  double slowdown = 0;  // 0: not checked
  double timed_seconds = 0;
};

// A reading of the reference kernel over its quiet baseline, on the clock the runs use.
double Slowdown(const ReferenceReading& reading, const ReferenceBaseline& baseline,
                bool wall_timed) {
  const double base = wall_timed ? baseline.wall_ms : baseline.cpu_ms;
  return base > 0 ? (wall_timed ? reading.wall_ms : reading.cpu_ms) / base : 0.0;
}

absl::StatusOr<Attempt> RunAttempt(Runtime& runtime, const MeasurementOptions& options,
                                   const MeasurementEnv& env, const Clock& clock, bool wall_timed) {
  Attempt attempt;
  const Clock& wall = *env.wall;
  const bool check = env.sensor != nullptr && env.baseline != nullptr && options.reference_runs > 0;
  const auto slowdown_of = [&](const ReferenceReading& r) {
    return Slowdown(r, *env.baseline, wall_timed);
  };
  std::optional<ReferenceReading> before;
  if (check) before = ReadReferenceKernel(*env.sensor, wall, clock, options.reference_runs);

  const int64_t warmup_start = wall.NowNanos();
  while (attempt.warmup_runs < options.warmups ||
         (wall.NowNanos() - warmup_start) / 1e9 < options.warmup_seconds) {
    if (absl::StatusOr<std::optional<double>> run = runtime.Run(); !run.ok()) {
      return run.status();
    }
    ++attempt.warmup_runs;
  }

  // Preempted runs kept aside: used only if too few clean runs are left at the end.
  std::vector<double> preempted_samples, preempted_wall, preempted_raw;
  const bool interleave = check && options.interleave_reference;
  std::vector<double> recent_reference;  // the last 5 interleaved readings
  const int64_t start = wall.NowNanos();
  while (true) {
    double scale = 1;
    if (interleave) {
      const int64_t ref_before = clock.NowNanos();
      env.sensor->RunReferenceKernel();
      recent_reference.push_back((clock.NowNanos() - ref_before) / 1e6);
      if (recent_reference.size() > 5) recent_reference.erase(recent_reference.begin());
      const double base = wall_timed ? env.baseline->wall_ms : env.baseline->cpu_ms;
      const double level = Median(recent_reference);
      if (base > 0 && level > 0) scale = base / level;
    }
    const int64_t switches_before = env.sensor ? env.sensor->InvoluntarySwitches() : 0;
    const int64_t wall_before = wall.NowNanos();
    const int64_t before_ns = clock.NowNanos();
    absl::StatusOr<std::optional<double>> run = runtime.Run();
    const int64_t after_ns = clock.NowNanos();
    const int64_t wall_after = wall.NowNanos();
    if (!run.ok()) return run.status();
    const bool preempted = env.sensor && env.sensor->InvoluntarySwitches() > switches_before;
    ++attempt.timed_runs;
    if (run->has_value()) ++attempt.reported;
    const double raw = run->has_value() ? **run : (after_ns - before_ns) / 1e6;
    const double sample = raw * scale;
    const double wall_sample = (wall_after - wall_before) / 1e6;
    if (preempted) ++attempt.preempted_runs;
    // Preemption inflates only a wall-clock figure; a CPU-time one is kept.
    if (preempted && wall_timed && !run->has_value()) {
      ++attempt.excluded_runs;
      preempted_samples.push_back(sample);
      preempted_wall.push_back(wall_sample);
      preempted_raw.push_back(raw);
    } else {
      attempt.samples_ms.push_back(sample);
      attempt.wall_ms.push_back(wall_sample);
      attempt.raw_ms.push_back(raw);
    }

    const int n = static_cast<int>(attempt.samples_ms.size());
    const double elapsed = (wall_after - start) / 1e9;
    if (n >= options.min_repeats && elapsed >= options.min_seconds &&
        ComputeLatencyStats(attempt.samples_ms).median_cv < options.target_median_cv) {
      attempt.stop_reason = "converged";
      break;
    }
    if (attempt.timed_runs >= options.max_repeats) {
      attempt.stop_reason = "max_repeats";
      break;
    }
    if (elapsed >= options.max_seconds) {
      attempt.stop_reason = "max_time";
      break;
    }
  }
  attempt.timed_seconds = (wall.NowNanos() - start) / 1e9;
  if (static_cast<int>(attempt.samples_ms.size()) < options.min_repeats &&
      !preempted_samples.empty()) {
    // Preempted nearly throughout: better a figure from every run than one from two.
    attempt.samples_ms.insert(attempt.samples_ms.end(), preempted_samples.begin(),
                              preempted_samples.end());
    attempt.wall_ms.insert(attempt.wall_ms.end(), preempted_wall.begin(), preempted_wall.end());
    attempt.raw_ms.insert(attempt.raw_ms.end(), preempted_raw.begin(), preempted_raw.end());
    attempt.excluded_runs = 0;
  }

  if (check) {
    const ReferenceReading after =
        ReadReferenceKernel(*env.sensor, wall, clock, options.reference_runs);
    attempt.slowdown = std::max(slowdown_of(*before), slowdown_of(after));
    if (attempt.slowdown <= options.interference_threshold) {
      env.baseline->ObserveQuiet(std::min(before->wall_ms, after.wall_ms),
                                 wall_timed ? 0 : std::min(before->cpu_ms, after.cpu_ms));
    }
  }
  return attempt;
}

// Step 9: leaves the machine alone for growing delays (0.25 s doubling to 2 s, at most until
// `*waited` reaches the option's budget) until the reference kernel reads quiet again.
// True when it did; `*waited` and `*delay` carry over between calls for one measurement.
bool WaitForQuiet(const MeasurementOptions& options, const MeasurementEnv& env, const Clock& clock,
                  bool wall_timed, double* waited, double* delay) {
  while (*waited < options.interference_wait_seconds) {
    const double seconds = std::min(*delay, options.interference_wait_seconds - *waited);
    env.sensor->Wait(seconds);
    *waited += seconds;
    *delay = std::min(*delay * 2, 2.0);
    const ReferenceReading reading =
        ReadReferenceKernel(*env.sensor, *env.wall, clock, options.reference_runs);
    if (Slowdown(reading, *env.baseline, wall_timed) <= options.interference_threshold) {
      return true;
    }
  }
  return false;
}

// Steps 1-9: one measurement with its own Prepare. `config` is validated. `*waited` is the
// step-9 waiting of every measurement of this architecture so far: the budget is shared.
absl::StatusOr<Measurement> MeasureOnce(Runtime& runtime, const core::Architecture& arch,
                                        DeviceConfig config, const MeasurementOptions& options,
                                        const MeasurementEnv& env, double* waited) {
  Measurement measurement;
  config.runtime = runtime.name();
  measurement.config = config;
  measurement.arch = arch;
  MeasurementProtocol& protocol = measurement.protocol;
  protocol.warmups = options.warmups;
  protocol.warmup_seconds = options.warmup_seconds;
  protocol.min_repeats = options.min_repeats;
  protocol.min_seconds = options.min_seconds;
  protocol.max_repeats = options.max_repeats;
  protocol.max_seconds = options.max_seconds;
  protocol.target_median_cv = options.target_median_cv;
  protocol.pinning_requested = options.pin_threads;

  ThreadPinner* pinned_with = nullptr;
  if (options.pin_threads) {
    absl::StatusOr<std::vector<int>> cpus = env.pinner->Pin(config.threads);
    if (cpus.ok()) {
      protocol.pinned = true;
      protocol.pinned_cpus = *cpus;
      pinned_with = env.pinner;
      if (static_cast<int>(cpus->size()) < config.threads) {
        protocol.pinning_note =
            absl::StrCat("only ", cpus->size(), " CPUs for ", config.threads, " threads");
      }
    } else {
      protocol.pinning_note = std::string(cpus.status().message());
    }
  }
  PinScope unpin(pinned_with);

  if (absl::Status prepared = runtime.Prepare(arch, config.batch, config.threads); !prepared.ok()) {
    return prepared;
  }
  const bool cpu_timed = options.clock == "auto" && env.thread_cpu != nullptr &&
                         runtime.RunsOnCallingThread(config.threads);
  const Clock& clock = cpu_timed ? *env.thread_cpu : *env.wall;

  const bool checked =
      env.sensor != nullptr && env.baseline != nullptr && options.reference_runs > 0;
  std::optional<Attempt> chosen;
  int attempts = 0;
  double timed_seconds = 0;
  double delay = 0.25;
  while (true) {
    absl::StatusOr<Attempt> attempt = RunAttempt(runtime, options, env, clock, !cpu_timed);
    if (!attempt.ok()) return attempt.status();
    ++attempts;
    timed_seconds += attempt->timed_seconds;
    const bool clean = !checked || attempt->slowdown <= options.interference_threshold;
    if (!chosen || clean || attempt->slowdown < chosen->slowdown) chosen = *std::move(attempt);
    if (clean) {
      protocol.interference = !checked ? "unchecked" : attempts == 1 ? "none" : "repeated";
      break;
    }
    if (attempts > options.interference_retries || timed_seconds >= options.max_seconds) {
      // Disturbed throughout: the disturbance may pass within seconds. Wait for a quiet
      // reading and measure again; flag only when the wait budget runs out first.
      if (WaitForQuiet(options, env, clock, !cpu_timed, waited, &delay)) continue;
      protocol.interference = "flagged";
      break;
    }
  }
  protocol.attempts = attempts;
  protocol.warmup_runs = chosen->warmup_runs;
  protocol.stop_reason = chosen->stop_reason;
  protocol.timed_runs = chosen->timed_runs;
  protocol.preempted_runs = chosen->preempted_runs;
  protocol.excluded_runs = chosen->excluded_runs;
  protocol.reference_slowdown = chosen->slowdown;
  if (checked) {
    protocol.reference_baseline_ms = cpu_timed ? env.baseline->cpu_ms : env.baseline->wall_ms;
  }
  // Runtime figures are never excluded, so reported <= kept runs.
  const int kept = static_cast<int>(chosen->samples_ms.size());
  protocol.timing_source = chosen->reported == 0      ? (cpu_timed ? "thread_cpu" : "agent_clock")
                           : chosen->reported == kept ? "runtime"
                                                      : "mixed";
  protocol.wall_median_ms = Median(chosen->wall_ms);
  protocol.raw_median_ms = Median(chosen->raw_ms);
  protocol.corrected = checked && options.interleave_reference;
  measurement.samples_ms = std::move(chosen->samples_ms);
  measurement.stats = ComputeLatencyStats(measurement.samples_ms);
  return measurement;
}

// Step 10: of the medians so far, the two closest (relative to the lower); their spread
// and the index of the lower one.
struct ClosestPair {
  double spread = 0;
  size_t lower = 0;
};
ClosestPair FindClosestPair(const std::vector<Measurement>& taken) {
  ClosestPair best{std::numeric_limits<double>::infinity(), 0};
  for (size_t i = 0; i < taken.size(); ++i) {
    for (size_t j = i + 1; j < taken.size(); ++j) {
      const double a = taken[i].stats.median_ms, b = taken[j].stats.median_ms;
      const double lower = std::min(a, b);
      const double spread = a == b      ? 0
                            : lower > 0 ? std::abs(a - b) / lower
                                        : std::numeric_limits<double>::infinity();
      if (spread < best.spread) best = {spread, a <= b ? i : j};
    }
  }
  return best;
}

}  // namespace

absl::StatusOr<Measurement> MeasureLatency(Runtime& runtime, const core::Architecture& arch,
                                           DeviceConfig config, const MeasurementOptions& options,
                                           const MeasurementEnv& env) {
  if (absl::Status valid = Validate(config, options, env); !valid.ok()) return valid;
  std::vector<Measurement> taken;
  double waited = 0;
  while (true) {
    absl::StatusOr<Measurement> m = MeasureOnce(runtime, arch, config, options, env, &waited);
    if (!m.ok()) return m.status();
    taken.push_back(*std::move(m));
    const int n = static_cast<int>(taken.size());
    if (n < options.independent_measurements) continue;
    if (n >= options.max_independent_measurements ||
        AgreeWithin(taken, options.agreement_tolerance)) {
      break;
    }
  }
  Measurement chosen = ChooseAmongIndependent(std::move(taken));
  chosen.protocol.waited_seconds = waited;
  return chosen;
}

Measurement ChooseAmongIndependent(std::vector<Measurement> taken) {
  std::vector<double> medians;
  for (const Measurement& m : taken) medians.push_back(m.stats.median_ms);
  Measurement chosen = std::move(taken[FindClosestPair(taken).lower]);
  chosen.protocol.independent_medians_ms = std::move(medians);
  return chosen;
}

bool AgreeWithin(const std::vector<Measurement>& taken, double tolerance) {
  return taken.size() == 1 || FindClosestPair(taken).spread <= tolerance;
}

absl::StatusOr<std::vector<Measurement>> MeasureInPasses(
    size_t count, int passes, double tolerance,
    const std::function<absl::StatusOr<Measurement>(size_t)>& measure) {
  std::vector<std::vector<Measurement>> taken(count);
  for (int pass = 1; pass <= std::max(passes, 1); ++pass) {
    for (size_t i = 0; i < count; ++i) {
      if (pass > 2 && AgreeWithin(taken[i], tolerance)) continue;
      absl::StatusOr<Measurement> m = measure(i);
      if (!m.ok()) return m.status();
      taken[i].push_back(*std::move(m));
    }
  }
  std::vector<Measurement> out;
  for (std::vector<Measurement>& t : taken) {
    // One pass: the measurement as step 10 left it (its own independent medians).
    out.push_back(t.size() == 1 ? std::move(t[0]) : ChooseAmongIndependent(std::move(t)));
  }
  return out;
}

absl::StatusOr<Measurement> MeasureLatency(Runtime& runtime, const core::Architecture& arch,
                                           DeviceConfig config, const MeasurementOptions& options,
                                           const Clock& clock, ThreadPinner* pinner) {
  MeasurementEnv env;
  env.wall = &clock;
  env.pinner = pinner;
  return MeasureLatency(runtime, arch, std::move(config), options, env);
}

}  // namespace maplex::agent

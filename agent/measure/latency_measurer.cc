#include "agent/measure/latency_measurer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

absl::Status Validate(const DeviceConfig& config, const MeasurementOptions& options,
                      ThreadPinner* pinner) {
  if (config.batch < 1 || config.threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", config.batch, " and threads ",
                                                   config.threads, " must be at least 1"));
  }
  if (config.precision != "fp32") {
    return absl::InvalidArgumentError(
        absl::StrCat("precision \"", config.precision, "\" not supported; only fp32"));
  }
  if (options.warmups < 0 || options.min_repeats < 1 || options.max_repeats < options.min_repeats ||
      !(options.max_seconds > 0) || !(options.target_median_cv > 0)) {
    return absl::InvalidArgumentError(
        "measurement options need warmups >= 0, 1 <= min_repeats <= max_repeats, "
        "max_seconds > 0 and target_median_cv > 0");
  }
  if (options.pin_threads && pinner == nullptr) {
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

}  // namespace

absl::StatusOr<Measurement> MeasureLatency(Runtime& runtime, const core::Architecture& arch,
                                           DeviceConfig config, const MeasurementOptions& options,
                                           const Clock& clock, ThreadPinner* pinner) {
  if (absl::Status valid = Validate(config, options, pinner); !valid.ok()) return valid;
  Measurement measurement;
  config.runtime = runtime.name();
  measurement.config = config;
  measurement.arch = arch;
  MeasurementProtocol& protocol = measurement.protocol;
  protocol.warmups = options.warmups;
  protocol.min_repeats = options.min_repeats;
  protocol.max_repeats = options.max_repeats;
  protocol.max_seconds = options.max_seconds;
  protocol.target_median_cv = options.target_median_cv;
  protocol.pinning_requested = options.pin_threads;

  ThreadPinner* pinned_with = nullptr;
  if (options.pin_threads) {
    absl::StatusOr<std::vector<int>> cpus = pinner->Pin(config.threads);
    if (cpus.ok()) {
      protocol.pinned = true;
      protocol.pinned_cpus = *cpus;
      pinned_with = pinner;
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
  for (int i = 0; i < options.warmups; ++i) {
    if (absl::StatusOr<std::optional<double>> run = runtime.Run(); !run.ok()) {
      return run.status();
    }
  }

  int reported = 0;
  const int64_t start = clock.NowNanos();
  while (true) {
    const int64_t before = clock.NowNanos();
    absl::StatusOr<std::optional<double>> run = runtime.Run();
    const int64_t after = clock.NowNanos();
    if (!run.ok()) return run.status();
    if (run->has_value()) ++reported;
    measurement.samples_ms.push_back(run->has_value() ? **run : (after - before) / 1e6);

    const int n = static_cast<int>(measurement.samples_ms.size());
    if (n >= options.min_repeats &&
        ComputeLatencyStats(measurement.samples_ms).median_cv < options.target_median_cv) {
      protocol.stop_reason = "converged";
      break;
    }
    if (n >= options.max_repeats) {
      protocol.stop_reason = "max_repeats";
      break;
    }
    if ((after - start) / 1e9 >= options.max_seconds) {
      protocol.stop_reason = "max_time";
      break;
    }
  }
  const int n = static_cast<int>(measurement.samples_ms.size());
  protocol.timing_source = reported == 0 ? "agent_clock" : reported == n ? "runtime" : "mixed";
  measurement.stats = ComputeLatencyStats(measurement.samples_ms);
  return measurement;
}

}  // namespace maplex::agent

#include "agent/measure/latency_measurer.h"

#include <deque>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Each Run advances the manual clock by the next scripted latency (the last one repeats).
class ScriptedRuntime : public Runtime {
 public:
  ScriptedRuntime(ManualClock& clock, std::vector<double> latencies_ms)
      : clock_(clock), latencies_ms_(std::move(latencies_ms)) {}
  std::string name() const override { return "scripted"; }
  absl::Status Prepare(const core::Architecture& arch, int batch, int threads) override {
    ++prepares;
    prepared_cell = arch;
    prepared_batch = batch;
    prepared_threads = threads;
    clock_.AdvanceMillis(1000);  // preparation time must not count
    return prepare_status;
  }
  absl::StatusOr<std::optional<double>> Run() override {
    ++runs;
    if (runs == fail_on_run) return absl::InternalError("device lost");
    const double ms = latencies_ms_[std::min(next_, latencies_ms_.size() - 1)];
    ++next_;
    clock_.AdvanceMillis(ms);
    if (report_itself) return std::optional<double>(ms / 2);
    return std::optional<double>();
  }
  absl::StatusOr<std::vector<float>> Output() const override {
    return absl::UnimplementedError("scripted");
  }

  int prepares = 0, runs = 0, fail_on_run = -1;
  bool report_itself = false;
  absl::Status prepare_status;
  core::Architecture prepared_cell;
  int prepared_batch = 0, prepared_threads = 0;

 private:
  ManualClock& clock_;
  std::vector<double> latencies_ms_;
  size_t next_ = 0;
};

class FakePinner : public ThreadPinner {
 public:
  absl::StatusOr<std::vector<int>> Pin(int threads) override {
    pinned_threads = threads;
    if (!allow) return absl::PermissionDeniedError("sched_setaffinity: Operation not permitted");
    ++pinned;
    return std::vector<int>{0};
  }
  void Unpin() override { ++unpinned; }
  bool allow = true;
  int pinned = 0, unpinned = 0, pinned_threads = 0;
};

const core::Architecture kCell =
    core::Nb201Space::Get().FromCell(*core::Nb201Space::CellFromOpCodes({3, 3, 3, 3, 3, 3}));

DeviceConfig Config(int batch, int threads) {
  DeviceConfig config;
  config.hardware_fingerprint = "hw-0123456789abcdef";
  config.batch = batch;
  config.threads = threads;
  return config;
}

MeasurementOptions Options() {
  MeasurementOptions options;
  options.warmups = 2;
  options.min_repeats = 3;
  options.max_repeats = 10;
  options.max_seconds = 100;
  options.target_median_cv = 0.01;
  options.pin_threads = false;
  // By count only: the tests below of time-based warm-up and minimum span set them.
  options.warmup_seconds = 0;
  options.min_seconds = 0;
  options.interleave_reference = false;  // its own test below
  options.independent_measurements = 1;  // step 10 has its own tests below
  return options;
}

TEST(MeasureLatencyTest, SteadyLatencyConvergesAtMinRepeats) {
  ManualClock clock;
  // Warm-ups are slow; the timed runs are steady.
  ScriptedRuntime runtime(clock, {50, 40, 5, 5, 5, 5});
  absl::StatusOr<Measurement> m =
      MeasureLatency(runtime, kCell, Config(4, 2), Options(), clock, nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(runtime.prepares, 1);
  EXPECT_EQ(runtime.prepared_cell, kCell);
  EXPECT_EQ(runtime.prepared_batch, 4);
  EXPECT_EQ(runtime.prepared_threads, 2);
  EXPECT_EQ(runtime.runs, 2 + 3);
  EXPECT_THAT(m->samples_ms, ElementsAre(5, 5, 5));
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 5);
  EXPECT_EQ(m->stats.cv, 0);
  EXPECT_EQ(m->protocol.stop_reason, "converged");
  EXPECT_EQ(m->protocol.timing_source, "agent_clock");
  EXPECT_EQ(m->protocol.warmups, 2);
  EXPECT_FALSE(m->protocol.pinning_requested);
  EXPECT_EQ(m->config.runtime, "scripted");
  EXPECT_EQ(m->config.hardware_fingerprint, "hw-0123456789abcdef");
  EXPECT_EQ(m->config.batch, 4);
}

// Measures a runtime alternating between `fast` and `slow` ms, without warm-ups.
absl::StatusOr<Measurement> MeasureAlternating(double fast, double slow,
                                               MeasurementOptions options) {
  ManualClock clock;
  std::vector<double> latencies;
  for (int i = 0; i < 40; ++i) latencies.push_back(i % 2 ? slow : fast);
  ScriptedRuntime runtime(clock, latencies);
  options.warmups = 0;
  return MeasureLatency(runtime, kCell, Config(1, 1), options, clock, nullptr);
}

TEST(MeasureLatencyTest, NoisyLatencyStopsAtMaxRepeats) {
  absl::StatusOr<Measurement> m = MeasureAlternating(2, 10, Options());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->stats.repeats, 10);
  EXPECT_EQ(m->protocol.stop_reason, "max_repeats");
  EXPECT_GT(m->stats.median_cv, 0.01);
  EXPECT_DOUBLE_EQ(m->stats.p90_ms, 10);
}

TEST(MeasureLatencyTest, TimeBoundStopsEarly) {
  MeasurementOptions options = Options();
  options.max_seconds = 1.0;  // 100 + 300 + 100 + 300 + 100 + 300 ms crosses it on run 6
  absl::StatusOr<Measurement> m = MeasureAlternating(100, 300, options);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->protocol.stop_reason, "max_time");
  EXPECT_EQ(m->stats.repeats, 6);
}

TEST(MeasureLatencyTest, UsesTheRuntimesOwnFigureWhenItHasOne) {
  ManualClock clock;
  ScriptedRuntime runtime(clock, {8});
  runtime.report_itself = true;  // reports half of the clock's time
  absl::StatusOr<Measurement> m =
      MeasureLatency(runtime, kCell, Config(1, 1), Options(), clock, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 4);
  EXPECT_EQ(m->protocol.timing_source, "runtime");
}

TEST(MeasureLatencyTest, RecordsPinningAndAlwaysUnpins) {
  ManualClock clock;
  ScriptedRuntime runtime(clock, {5});
  FakePinner pinner;
  MeasurementOptions options = Options();
  options.pin_threads = true;
  absl::StatusOr<Measurement> m =
      MeasureLatency(runtime, kCell, Config(1, 3), options, clock, &pinner);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(pinner.pinned_threads, 3);
  EXPECT_TRUE(m->protocol.pinned);
  EXPECT_THAT(m->protocol.pinned_cpus, ElementsAre(0));
  EXPECT_THAT(m->protocol.pinning_note, HasSubstr("only 1 CPUs for 3 threads"));
  EXPECT_EQ(pinner.unpinned, 1);

  // A failing run still unpins.
  runtime.fail_on_run = runtime.runs + 3;
  EXPECT_EQ(MeasureLatency(runtime, kCell, Config(1, 1), options, clock, &pinner).status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(pinner.unpinned, 2);

  // A refused pin is recorded, not fatal.
  pinner.allow = false;
  m = MeasureLatency(runtime, kCell, Config(1, 1), options, clock, &pinner);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->protocol.pinned);
  EXPECT_TRUE(m->protocol.pinning_requested);
  EXPECT_THAT(m->protocol.pinning_note, HasSubstr("not permitted"));
  EXPECT_EQ(pinner.unpinned, 2);
}

TEST(MeasureLatencyTest, RejectsBadInputAndPassesPrepareErrorsOn) {
  ManualClock clock;
  ScriptedRuntime runtime(clock, {5});
  auto code = [&](const DeviceConfig& config, const MeasurementOptions& options) {
    return MeasureLatency(runtime, kCell, config, options, clock, nullptr).status().code();
  };
  DeviceConfig int8 = Config(1, 1);
  int8.precision = "int8";
  EXPECT_EQ(code(int8, Options()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Config(0, 1), Options()), absl::StatusCode::kInvalidArgument);
  MeasurementOptions options = Options();
  options.max_repeats = 1;  // below min_repeats
  EXPECT_EQ(code(Config(1, 1), options), absl::StatusCode::kInvalidArgument);
  options = Options();
  options.pin_threads = true;  // without a pinner
  EXPECT_EQ(code(Config(1, 1), options), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime.prepares, 0);
  runtime.prepare_status = absl::UnavailableError("no device");
  EXPECT_EQ(code(Config(1, 1), Options()), absl::StatusCode::kUnavailable);
  EXPECT_EQ(runtime.runs, 0);
}

// Runs at levels_ms[k] ms after the k-th Prepare (the last level repeats).
class PreparedLevelRuntime : public Runtime {
 public:
  PreparedLevelRuntime(ManualClock& clock, std::vector<double> levels_ms)
      : clock_(clock), levels_ms_(std::move(levels_ms)) {}
  std::string name() const override { return "levels"; }
  absl::Status Prepare(const core::Architecture&, int, int) override {
    level_ms_ = levels_ms_[std::min<size_t>(prepares, levels_ms_.size() - 1)];
    ++prepares;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<double>> Run() override {
    clock_.AdvanceMillis(level_ms_);
    return std::optional<double>();
  }
  absl::StatusOr<std::vector<float>> Output() const override {
    return absl::UnimplementedError("levels");
  }
  int prepares = 0;

 private:
  ManualClock& clock_;
  std::vector<double> levels_ms_;
  double level_ms_ = 0;
};

absl::StatusOr<Measurement> MeasureIndependently(PreparedLevelRuntime& runtime,
                                                 ManualClock& clock) {
  MeasurementOptions options = Options();
  options.independent_measurements = 2;
  options.max_independent_measurements = 3;
  options.agreement_tolerance = 0.05;
  return MeasureLatency(runtime, kCell, Config(1, 1), options, clock, nullptr);
}

TEST(MeasureLatencyTest, TwoIndependentMeasurementsThatAgreeKeepTheLower) {
  ManualClock clock;
  PreparedLevelRuntime runtime(clock, {5.2, 5});
  absl::StatusOr<Measurement> m = MeasureIndependently(runtime, clock);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(runtime.prepares, 2);
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 5);
  EXPECT_THAT(m->protocol.independent_medians_ms, ElementsAre(5.2, 5));
  EXPECT_EQ(m->protocol.version, 4);
}

TEST(MeasureLatencyTest, ASlowMeasurementIsOutvotedByAThirdIndependentOne) {
  ManualClock clock;
  PreparedLevelRuntime runtime(clock, {7.5, 5, 5.1});  // the first reads 50 % slow
  absl::StatusOr<Measurement> m = MeasureIndependently(runtime, clock);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(runtime.prepares, 3);
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 5);
  EXPECT_THAT(m->protocol.independent_medians_ms, ElementsAre(7.5, 5, 5.1));
}

TEST(MeasureLatencyTest, IndependentMeasurementsStopAtTheirMaximumWithoutAgreement) {
  ManualClock clock;
  PreparedLevelRuntime runtime(clock, {5, 7, 9, 11});
  absl::StatusOr<Measurement> m = MeasureIndependently(runtime, clock);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(runtime.prepares, 3);
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 7);  // the lower of the closest two, 7 and 9
  EXPECT_THAT(m->protocol.independent_medians_ms, ElementsAre(5, 7, 9));
}

TEST(MeasureLatencyTest, RejectsInconsistentIndependentMeasurementCounts) {
  ManualClock clock;
  PreparedLevelRuntime runtime(clock, {5});
  MeasurementOptions options = Options();
  options.independent_measurements = 0;
  EXPECT_EQ(MeasureLatency(runtime, kCell, Config(1, 1), options, clock, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.independent_measurements = 3;
  options.max_independent_measurements = 2;
  EXPECT_EQ(MeasureLatency(runtime, kCell, Config(1, 1), options, clock, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime.prepares, 0);
}

TEST(MeasureLatencyTest, WarmsUpByTimeAndSpansMinSeconds) {
  ManualClock clock;
  ScriptedRuntime runtime(clock, {10});
  MeasurementOptions options = Options();
  options.warmups = 2;
  options.warmup_seconds = 0.1;  // 10 runs of 10 ms, not 2
  options.min_repeats = 3;
  options.min_seconds = 0.2;  // converged after 3 runs, but the runs must span 200 ms
  options.max_repeats = 100;
  absl::StatusOr<Measurement> m =
      MeasureLatency(runtime, kCell, Config(1, 1), options, clock, nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.warmup_runs, 10);
  EXPECT_EQ(m->stats.repeats, 20);
  EXPECT_EQ(m->protocol.stop_reason, "converged");
  EXPECT_DOUBLE_EQ(m->protocol.warmup_seconds, 0.1);
  EXPECT_DOUBLE_EQ(m->protocol.min_seconds, 0.2);
}

// One timed run as the two clocks and the scheduler see it.
struct Step {
  double wall_ms;
  double cpu_ms;
  bool preempted = false;
};

// A sensor whose reference kernel advances both clocks by scripted milliseconds (the last
// one repeats) and whose involuntary switches the runtime below bumps.
class FakeSensor : public InterferenceSensor {
 public:
  FakeSensor(ManualClock& wall, ManualClock& cpu) : wall_(wall), cpu_(cpu) {}
  int64_t InvoluntarySwitches() override { return switches; }
  void RunReferenceKernel() override {
    const double ms = reference_ms[std::min(next_, reference_ms.size() - 1)];
    ++next_;
    ++kernel_runs;
    wall_.AdvanceMillis(ms);
    cpu_.AdvanceMillis(ms);
  }
  // Sleeping moves the wall clock only.
  void Wait(double seconds) override {
    wall_.AdvanceMillis(seconds * 1e3);
    waits.push_back(seconds);
  }
  void Script(std::vector<double> ms) {
    reference_ms = std::move(ms);
    next_ = 0;
  }
  std::vector<double> reference_ms = {1.0};
  int64_t switches = 0;
  int kernel_runs = 0;
  std::vector<double> waits;

 private:
  ManualClock& wall_;
  ManualClock& cpu_;
  size_t next_ = 0;
};

// Runs advance the wall and the CPU clock by their step (the steps cycle) and bump the
// sensor's switches when preempted.
class TwoClockRuntime : public Runtime {
 public:
  TwoClockRuntime(ManualClock& wall, ManualClock& cpu, FakeSensor* sensor, std::vector<Step> steps)
      : wall_(wall), cpu_(cpu), sensor_(sensor), steps_(std::move(steps)) {}
  std::string name() const override { return "two-clock"; }
  absl::Status Prepare(const core::Architecture&, int, int) override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<double>> Run() override {
    const Step& step = steps_[next_ % steps_.size()];
    ++next_;
    wall_.AdvanceMillis(step.wall_ms);
    cpu_.AdvanceMillis(step.cpu_ms);
    if (step.preempted && sensor_ != nullptr) ++sensor_->switches;
    return std::optional<double>();
  }
  absl::StatusOr<std::vector<float>> Output() const override {
    return absl::UnimplementedError("two-clock");
  }
  bool RunsOnCallingThread(int threads) const override { return on_calling_thread && threads == 1; }
  bool on_calling_thread = true;

 private:
  ManualClock& wall_;
  ManualClock& cpu_;
  FakeSensor* sensor_;
  std::vector<Step> steps_;
  size_t next_ = 0;
};

// Every other run preempted: 5 ms of work that took 12 ms of wall time.
std::vector<Step> HalfPreempted() { return {{5, 5}, {12, 5, true}}; }

TEST(MeasureLatencyTest, TimesOneThreadWithItsCpuClock) {
  ManualClock wall, cpu;
  FakeSensor sensor(wall, cpu);
  TwoClockRuntime runtime(wall, cpu, &sensor, HalfPreempted());
  MeasurementEnv env{&wall, &cpu, nullptr, &sensor, nullptr};
  MeasurementOptions options = Options();
  options.warmups = 0;
  options.max_repeats = 20;
  absl::StatusOr<Measurement> m = MeasureLatency(runtime, kCell, Config(1, 1), options, env);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.timing_source, "thread_cpu");
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 5);
  EXPECT_EQ(m->protocol.preempted_runs, m->stats.repeats / 2);
  EXPECT_EQ(m->protocol.excluded_runs, 0);           // CPU time is not inflated by preemption
  EXPECT_EQ(m->protocol.interference, "unchecked");  // no baseline
}

TEST(MeasureLatencyTest, WallClockLeavesPreemptedRunsOut) {
  for (const bool two_threads : {true, false}) {
    ManualClock wall, cpu;
    FakeSensor sensor(wall, cpu);
    TwoClockRuntime runtime(wall, cpu, &sensor, HalfPreempted());
    MeasurementEnv env{&wall, &cpu, nullptr, &sensor, nullptr};
    MeasurementOptions options = Options();
    options.warmups = 0;
    options.min_repeats = 6;
    options.max_repeats = 20;
    if (!two_threads) options.clock = "wall";  // one thread, but the wall clock asked for
    absl::StatusOr<Measurement> m =
        MeasureLatency(runtime, kCell, Config(1, two_threads ? 2 : 1), options, env);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->protocol.timing_source, "agent_clock");
    // Without the exclusion the median of 5s and 12s would be 8.5.
    EXPECT_DOUBLE_EQ(m->stats.median_ms, 5);
    EXPECT_EQ(m->stats.repeats, 6);
    EXPECT_EQ(m->protocol.timed_runs, 11);
    EXPECT_EQ(m->protocol.preempted_runs, 5);
    EXPECT_EQ(m->protocol.excluded_runs, 5);
    EXPECT_DOUBLE_EQ(m->protocol.wall_median_ms, 5);
  }
}

TEST(MeasureLatencyTest, PreemptedThroughoutKeepsEveryRun) {
  ManualClock wall, cpu;
  FakeSensor sensor(wall, cpu);
  TwoClockRuntime runtime(wall, cpu, &sensor, {{12, 5, true}});
  MeasurementEnv env{&wall, &cpu, nullptr, &sensor, nullptr};
  MeasurementOptions options = Options();
  options.warmups = 0;
  options.clock = "wall";
  absl::StatusOr<Measurement> m = MeasureLatency(runtime, kCell, Config(1, 1), options, env);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.stop_reason, "max_repeats");
  EXPECT_EQ(m->stats.repeats, 10);
  EXPECT_EQ(m->protocol.preempted_runs, 10);
  EXPECT_EQ(m->protocol.excluded_runs, 0);
  EXPECT_DOUBLE_EQ(m->stats.median_ms, 12);
}

// A machine whose reference kernel (quiet: 1 ms) takes `reference_ms` in turn (the last
// repeats); 5 reference runs before and after each attempt, 2 retries.
struct InterferenceCase {
  ManualClock wall, cpu;
  FakeSensor sensor{wall, cpu};
  ReferenceBaseline baseline;
  TwoClockRuntime runtime{wall, cpu, &sensor, {{5, 5}}};
  MeasurementOptions options = Options();

  explicit InterferenceCase(std::vector<double> reference_ms) {
    sensor.reference_ms = std::move(reference_ms);
    baseline.wall_ms = baseline.cpu_ms = 1.0;
    options.warmups = 1;
    options.reference_runs = 5;
    options.interference_threshold = 1.10;
    options.interference_retries = 2;
  }
  absl::StatusOr<Measurement> Measure() {
    MeasurementEnv env{&wall, &cpu, nullptr, &sensor, &baseline};
    return MeasureLatency(runtime, kCell, Config(1, 1), options, env);
  }
};

std::vector<double> Repeat(double ms, int n) { return std::vector<double>(n, ms); }

std::vector<double> Concat(std::vector<std::vector<double>> parts) {
  std::vector<double> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST(MeasureLatencyTest, QuietReferenceKernelMeansNoInterference) {
  InterferenceCase c(Concat({Repeat(1.02, 10)}));
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "none");
  EXPECT_EQ(m->protocol.attempts, 1);
  EXPECT_NEAR(m->protocol.reference_slowdown, 1.02, 1e-5);
  EXPECT_DOUBLE_EQ(m->protocol.reference_baseline_ms, 1.0);
  EXPECT_EQ(c.sensor.kernel_runs, 10);
}

TEST(MeasureLatencyTest, DisturbedAttemptIsRepeated) {
  // Attempt 1: the reading after the runs is 30 % slow; attempt 2: quiet.
  InterferenceCase c(Concat({Repeat(1.0, 5), Repeat(1.3, 5), Repeat(1.01, 10)}));
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "repeated");
  EXPECT_EQ(m->protocol.attempts, 2);
  EXPECT_NEAR(m->protocol.reference_slowdown, 1.01, 1e-5);
  EXPECT_EQ(c.sensor.kernel_runs, 20);
}

TEST(MeasureLatencyTest, PersistentInterferenceIsFlaggedWithTheLeastDisturbedAttempt) {
  // Three attempts, slowdowns 1.5, 1.2, 1.4: all above 1.10; no waiting.
  InterferenceCase c(Concat({Repeat(1.5, 10), Repeat(1.2, 10), Repeat(1.4, 10)}));
  c.options.interference_wait_seconds = 0;
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "flagged");
  EXPECT_EQ(m->protocol.attempts, 3);
  EXPECT_NEAR(m->protocol.reference_slowdown, 1.2, 1e-5);
  EXPECT_EQ(c.sensor.kernel_runs, 30);
  EXPECT_TRUE(c.sensor.waits.empty());
  EXPECT_DOUBLE_EQ(m->protocol.waited_seconds, 0);
  // A disturbed reading never lowers (or raises) the baseline.
  EXPECT_DOUBLE_EQ(c.baseline.cpu_ms, 1.0);
}

TEST(MeasureLatencyTest, ADisturbanceThatPassesIsWaitedOutAndMeasuredAgain) {
  // Three disturbed attempts (30 readings), a reading after the first wait still disturbed,
  // then quiet: the fourth attempt, after waits of 0.25 and 0.5 s, is clean.
  InterferenceCase c(Concat({Repeat(1.5, 35), Repeat(1.0, 15)}));
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "repeated");
  EXPECT_EQ(m->protocol.attempts, 4);
  EXPECT_NEAR(m->protocol.reference_slowdown, 1.0, 1e-5);
  EXPECT_EQ(c.sensor.waits, (std::vector<double>{0.25, 0.5}));
  EXPECT_DOUBLE_EQ(m->protocol.waited_seconds, 0.75);
  EXPECT_EQ(c.sensor.kernel_runs, 30 + 10 + 10);
}

TEST(MeasureLatencyTest, WaitingStopsAtItsBudgetAndTheMeasurementIsFlagged) {
  InterferenceCase c(Repeat(1.3, 1));
  c.options.interference_wait_seconds = 5;
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "flagged");
  EXPECT_EQ(m->protocol.attempts, 3);
  // Backing off: 0.25, 0.5, 1, 2, then the 1.25 s left of the budget.
  EXPECT_EQ(c.sensor.waits, (std::vector<double>{0.25, 0.5, 1, 2, 1.25}));
  EXPECT_DOUBLE_EQ(m->protocol.waited_seconds, 5);
  EXPECT_EQ(c.sensor.kernel_runs, 30 + 5 * 5);
}

TEST(MeasureLatencyTest, IndependentMeasurementsShareOneWaitBudget) {
  InterferenceCase c(Repeat(1.3, 1));
  c.options.interference_wait_seconds = 5;
  c.options.independent_measurements = 2;
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "flagged");
  EXPECT_EQ(m->protocol.independent_medians_ms.size(), 2u);
  // The first measurement spends the whole budget; the second waits no more.
  EXPECT_EQ(c.sensor.waits, (std::vector<double>{0.25, 0.5, 1, 2, 1.25}));
  EXPECT_DOUBLE_EQ(m->protocol.waited_seconds, 5);
}

TEST(MeasureLatencyTest, QuieterCleanReadingLowersTheBaseline) {
  // Calibrated under load at 1.0 ms; the machine turns out quieter (0.95 ms).
  InterferenceCase c(Repeat(0.95, 10));
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "none");
  EXPECT_NEAR(c.baseline.cpu_ms, 0.95, 1e-5);
  // Now a reading at 1.06 ms is 11.6 % over the lowered baseline: disturbed.
  c.sensor.Script(Concat({Repeat(1.06, 10), Repeat(0.95, 10)}));
  m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "repeated");
}

TEST(MeasureLatencyTest, DisturbedAttemptsStopWhenTheTimeBudgetIsSpent) {
  InterferenceCase c(Repeat(1.5, 100));
  c.options.min_repeats = 20;
  c.options.max_repeats = 20;
  c.options.max_seconds = 0.15;  // 20 runs of 5 ms: two attempts cross it
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "flagged");
  EXPECT_EQ(m->protocol.attempts, 2);
}

TEST(MeasureLatencyTest, InterleavedReferenceDividesOutTheMachinesSpeed) {
  // The machine slows to 1/1.5 of its speed after 10 runs: the network (5 ms quiet) takes
  // 7.5 ms and so does every reference-kernel run (1 ms quiet, 1.5 ms).
  ManualClock wall, cpu;
  FakeSensor sensor(wall, cpu);
  sensor.reference_ms = Concat({Repeat(1.0, 5 + 10), Repeat(1.5, 100)});
  std::vector<Step> steps(10, Step{5, 5});
  steps.insert(steps.end(), 30, Step{7.5, 7.5});
  TwoClockRuntime runtime(wall, cpu, &sensor, steps);
  ReferenceBaseline baseline;
  baseline.wall_ms = baseline.cpu_ms = 1.0;
  MeasurementOptions options = Options();
  options.warmups = 0;
  options.min_repeats = 40;
  options.max_repeats = 40;
  options.reference_runs = 5;
  options.interference_threshold = 100;  // no retry: the correction alone
  options.interleave_reference = true;
  MeasurementEnv env{&wall, &cpu, nullptr, &sensor, &baseline};
  absl::StatusOr<Measurement> m = MeasureLatency(runtime, kCell, Config(1, 1), options, env);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->protocol.corrected);
  EXPECT_DOUBLE_EQ(m->protocol.raw_median_ms, 7.5);  // 30 of 40 runs slow
  EXPECT_NEAR(m->stats.median_ms, 5.0, 1e-5);
  EXPECT_EQ(sensor.kernel_runs, 5 + 40 + 5);
}

TEST(MeasureLatencyTest, ZeroReferenceRunsSwitchTheCheckOff) {
  InterferenceCase c(Repeat(2.0, 10));
  c.options.reference_runs = 0;
  absl::StatusOr<Measurement> m = c.Measure();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->protocol.interference, "unchecked");
  EXPECT_EQ(m->protocol.attempts, 1);
  EXPECT_EQ(c.sensor.kernel_runs, 0);
}

// Passes over a list (maplex-agent --measure_only --passes): the fake measures architecture i
// at the next median of its script and records the order of the calls.
struct ScriptedList {
  std::vector<std::deque<double>> medians;
  std::vector<size_t> calls;

  absl::StatusOr<Measurement> operator()(size_t i) {
    calls.push_back(i);
    if (medians[i].empty()) return absl::InternalError("script exhausted");
    Measurement m;
    m.stats.median_ms = medians[i].front();
    medians[i].pop_front();
    return m;
  }
};

std::vector<double> Medians(const std::vector<Measurement>& ms) {
  std::vector<double> out;
  for (const Measurement& m : ms) out.push_back(m.stats.median_ms);
  return out;
}

TEST(MeasureInPassesTest, OnePassMeasuresEachOnceInOrderAndKeepsItAsItIs) {
  ScriptedList list{{{3}, {1}, {2}}, {}};
  auto out = MeasureInPasses(3, 1, 0.05, [&](size_t i) -> absl::StatusOr<Measurement> {
    absl::StatusOr<Measurement> m = list(i);
    // What step 10 recorded (--independent_measurements) survives.
    if (m.ok()) m->protocol.independent_medians_ms = {m->stats.median_ms, 9};
    return m;
  });
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(list.calls, ElementsAre(0, 1, 2));
  EXPECT_THAT(Medians(*out), ElementsAre(3, 1, 2));
  EXPECT_THAT((*out)[1].protocol.independent_medians_ms, ElementsAre(1, 9));
}

TEST(MeasureInPassesTest, TwoPassesGoOverTheWholeListTwiceAndKeepTheLower) {
  // Architecture 1 ran in a slow stretch in the first pass.
  ScriptedList list{{{3, 3.06}, {1.35, 1}, {2, 2}}, {}};
  auto out = MeasureInPasses(3, 2, 0.05, std::ref(list));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(list.calls, ElementsAre(0, 1, 2, 0, 1, 2));
  EXPECT_THAT(Medians(*out), ElementsAre(3, 1, 2));
  EXPECT_THAT((*out)[1].protocol.independent_medians_ms, ElementsAre(1.35, 1));
}

TEST(MeasureInPassesTest, AThirdPassMeasuresOnlyTheDisagreeingAndOutvotesTheSlowOne) {
  // Architecture 1 is slow in the second pass: the third agrees with the first.
  ScriptedList list{{{3, 3}, {1.02, 1.35, 1.0}, {2, 2.01}}, {}};
  auto out = MeasureInPasses(3, 3, 0.05, std::ref(list));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(list.calls, ElementsAre(0, 1, 2, 0, 1, 2, 1));
  EXPECT_THAT(Medians(*out), ElementsAre(3, 1.0, 2));
  EXPECT_THAT((*out)[1].protocol.independent_medians_ms, ElementsAre(1.02, 1.35, 1.0));
}

TEST(MeasureInPassesTest, AFailedMeasurementFailsTheList) {
  ScriptedList list{{{3, 3}, {1}}, {}};
  auto out = MeasureInPasses(2, 2, 0.05, std::ref(list));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace maplex::agent

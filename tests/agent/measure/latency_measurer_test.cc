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

}  // namespace
}  // namespace maplex::agent

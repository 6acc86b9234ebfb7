#include "agent/measure/interference.h"

#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

// A reference kernel whose runs take scripted milliseconds (the last repeats), on both clocks;
// the wall clock additionally advances by `preemption_ms` (time the thread was not running).
class ScriptedKernel : public InterferenceSensor {
 public:
  ScriptedKernel(ManualClock& wall, ManualClock& cpu, std::vector<double> ms)
      : wall_(wall), cpu_(cpu), ms_(std::move(ms)) {}
  int64_t InvoluntarySwitches() override { return 0; }
  void RunReferenceKernel() override {
    const double ms = ms_[std::min(next_, ms_.size() - 1)];
    ++next_;
    cpu_.AdvanceMillis(ms);
    wall_.AdvanceMillis(ms + preemption_ms);
  }
  void Wait(double seconds) override { wall_.AdvanceMillis(seconds * 1e3); }
  double preemption_ms = 0;
  size_t runs() const { return next_; }

 private:
  ManualClock& wall_;
  ManualClock& cpu_;
  std::vector<double> ms_;
  size_t next_ = 0;
};

TEST(InterferenceTest, CalibrationIsTheTenthPercentileAfterAsManyUntimedRuns) {
  ManualClock wall, cpu;
  // 10 untimed runs (slow: a cold process), then 10 timed: 1.0 .. 1.9 ms.
  std::vector<double> ms(10, 9.0);
  for (int i = 0; i < 10; ++i) ms.push_back(1.9 - 0.1 * i);
  ScriptedKernel kernel(wall, cpu, ms);
  kernel.preemption_ms = 0.5;
  absl::StatusOr<ReferenceBaseline> baseline = CalibrateReferenceKernel(kernel, wall, cpu, 10);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  EXPECT_EQ(kernel.runs(), 20u);
  EXPECT_NEAR(baseline->cpu_ms, 1.1, 1e-5);  // sorted[10 / 10]
  EXPECT_NEAR(baseline->wall_ms, 1.6, 1e-5);
  EXPECT_EQ(baseline->calibration_runs, 10);
}

TEST(InterferenceTest, CalibrationNeedsFiveRuns) {
  ManualClock wall, cpu;
  ScriptedKernel kernel(wall, cpu, {1.0});
  EXPECT_EQ(CalibrateReferenceKernel(kernel, wall, cpu, 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(InterferenceTest, ReadingIsTheMedianOnEachClock) {
  ManualClock wall, cpu;
  ScriptedKernel kernel(wall, cpu, {1.0, 5.0, 1.2, 1.1, 9.0});
  kernel.preemption_ms = 1.0;
  ReferenceReading r = ReadReferenceKernel(kernel, wall, cpu, 5);
  EXPECT_NEAR(r.cpu_ms, 1.2, 1e-5);
  EXPECT_NEAR(r.wall_ms, 2.2, 1e-5);
}

TEST(InterferenceTest, BaselineOnlyMovesDown) {
  ReferenceBaseline b;
  b.ObserveQuiet(2.0, 1.0);
  EXPECT_DOUBLE_EQ(b.wall_ms, 2.0);
  EXPECT_DOUBLE_EQ(b.cpu_ms, 1.0);
  b.ObserveQuiet(3.0, 0.9);
  EXPECT_DOUBLE_EQ(b.wall_ms, 2.0);
  EXPECT_DOUBLE_EQ(b.cpu_ms, 0.9);
  b.ObserveQuiet(0, 0);  // no reading
  EXPECT_DOUBLE_EQ(b.wall_ms, 2.0);
  EXPECT_DOUBLE_EQ(b.cpu_ms, 0.9);
}

TEST(InterferenceTest, ProcessSensorRunsItsKernelAndCountsSwitches) {
  ProcessInterferenceSensor sensor;
  const int64_t before = sensor.InvoluntarySwitches();
  ReferenceReading r = ReadReferenceKernel(sensor, RealClock(), ThreadCpuClock(), 3);
  EXPECT_GT(r.cpu_ms, 0);
  EXPECT_GE(r.wall_ms, r.cpu_ms * 0.9);  // wall time covers the thread's CPU time
  EXPECT_GE(sensor.InvoluntarySwitches(), before);
}

}  // namespace
}  // namespace maplex::agent

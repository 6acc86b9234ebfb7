#include "agent/counters/reference_workload.h"

#include "agent/counters/perf_counter_source.h"
#include "agent/runtime/eigen_runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

// Runs the workload and reports every counter unavailable.
class CountingSource : public CounterSource {
 public:
  absl::StatusOr<CounterReport> CountAround(const std::vector<std::string>& names,
                                            absl::FunctionRef<void()> workload) override {
    workload();
    CounterReport report;
    for (const std::string& name : names) report.readings.push_back({name, false, 0, "fake"});
    return report;
  }
};

class RecordingRuntime : public Runtime {
 public:
  std::string name() const override { return "recording"; }
  absl::Status Prepare(const core::Architecture& arch, int batch, int threads) override {
    cell_ = arch;
    batch_ = batch;
    threads_ = threads;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<double>> Run() override {
    if (++runs == fail_on) return absl::InternalError("device lost");
    return std::optional<double>();
  }
  absl::StatusOr<std::vector<float>> Output() const override { return std::vector<float>(); }
  core::Architecture cell_;
  int batch_ = 0, threads_ = 0, runs = 0, fail_on = -1;
};

TEST(CountReferenceWorkloadTest, RunsTheReferenceCellSingleThreaded) {
  CountingSource source;
  RecordingRuntime runtime;
  absl::StatusOr<CounterReport> report = CountReferenceWorkload(source, runtime, 4);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(runtime.cell_, core::Nb201Space::Get().FromCell(ReferenceCell()));
  EXPECT_EQ(runtime.batch_, 1);
  EXPECT_EQ(runtime.threads_, 1);
  EXPECT_EQ(runtime.runs, 1 + 4);  // warm-up + counted runs
  EXPECT_EQ(report->readings.size(), MapleEdgeCounterSet().size());
}

TEST(CountReferenceWorkloadTest, PassesRunErrorsOn) {
  CountingSource source;
  RecordingRuntime runtime;
  runtime.fail_on = 3;
  EXPECT_EQ(CountReferenceWorkload(source, runtime, 4).status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(runtime.runs, 3);  // stops at the failure
  EXPECT_EQ(CountReferenceWorkload(source, runtime, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CountReferenceWorkloadTest, RealCountersAroundTheEigenRuntime) {
  PerfCounterSource source(RealClock());
  EigenRuntime runtime;
  absl::StatusOr<CounterReport> report = CountReferenceWorkload(source, runtime, 2);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->workload_seconds, 0);
  const core::CounterReading& task_clock = report->readings[11];
  ASSERT_EQ(task_clock.name, "task-clock");
  if (!task_clock.available) GTEST_SKIP() << task_clock.unavailable_reason;
  // The software counter really counted the workload. (How much of the wall time the
  // thread got depends on the machine's load, so no share is asserted.)
  EXPECT_GT(task_clock.value, 0);
}

}  // namespace
}  // namespace maplex::agent

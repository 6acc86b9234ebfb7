#include "agent/counters/perf_counter_source.h"

#include <cerrno>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

using ::testing::HasSubstr;

// Enough arithmetic and fresh pages to move every counter we read.
void ReferenceWorkload() {
  std::vector<double> data(1 << 20);
  double sum = 0;
  for (int pass = 0; pass < 4; ++pass) {
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] += std::sqrt(static_cast<double>(i + pass));
      sum += data[i];
    }
  }
  asm volatile("" : : "r,m"(sum) : "memory");
}

TEST(PerfCounterSourceTest, RejectsUnknownNames) {
  PerfCounterSource source(RealClock());
  EXPECT_EQ(source.CountAround({"cpu-cycles", "bogus"}, [] {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PerfCounterSourceTest, DescribesErrnos) {
  EXPECT_EQ(DescribePerfOpenError(ENOENT),
            "ENOENT \u2014 hardware event not exposed (VM/container)");
  EXPECT_THAT(DescribePerfOpenError(EACCES), HasSubstr("perf_event_paranoid"));
}

TEST(PerfCounterSourceTest, SoftwareCountersAlwaysWork) {
  PerfCounterSource source(RealClock());
  absl::StatusOr<CounterReport> report = source.CountAround(
      {"task-clock", "page-faults", "context-switches", "cpu-migrations"}, ReferenceWorkload);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->readings.size(), 4u);
  const core::CounterReading& task_clock = report->readings[0];
  if (!task_clock.available &&
      task_clock.unavailable_reason.find("not permitted") != std::string::npos) {
    GTEST_SKIP() << "perf events forbidden here: " << task_clock.unavailable_reason;
  }
  for (const core::CounterReading& reading : report->readings) {
    EXPECT_TRUE(reading.available) << reading.name << ": " << reading.unavailable_reason;
  }
  // task-clock (ns) must be close to, and not above, the wall time plus scheduling noise.
  EXPECT_GT(task_clock.value, 0.2 * report->workload_seconds * 1e9);
  EXPECT_LT(task_clock.value, 1.5 * report->workload_seconds * 1e9 + 1e6);
  EXPECT_GT(report->readings[1].value, 100);  // 8 MiB of fresh pages fault in
  EXPECT_THAT(report->method, HasSubstr("software: group"));
}

TEST(PerfCounterSourceTest, FullMapleEdgeSet) {
  PerfCounterSource source(RealClock());
  absl::StatusOr<CounterReport> report =
      source.CountAround(MapleEdgeCounterNames(), ReferenceWorkload);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->readings.size(), MapleEdgeCounterSet().size());
  EXPECT_GT(report->workload_seconds, 0);
  std::string hidden;
  for (size_t i = 0; i < report->readings.size(); ++i) {
    const core::CounterReading& reading = report->readings[i];
    EXPECT_EQ(reading.name, MapleEdgeCounterSet()[i].name);
    if (reading.available) {
      EXPECT_GE(reading.value, 0) << reading.name;
      EXPECT_TRUE(reading.unavailable_reason.empty());
    } else {
      // Never a made-up value, always a reason.
      EXPECT_EQ(reading.value, 0) << reading.name;
      EXPECT_THAT(reading.unavailable_reason, HasSubstr("perf_event_open: ")) << reading.name;
      if (MapleEdgeCounterSet()[i].kind == CounterKind::kHardware && hidden.empty()) {
        hidden = reading.name + ": " + reading.unavailable_reason;
      }
    }
  }
  const core::CounterReading& task_clock = report->readings[11];
  if (task_clock.available) {
    EXPECT_GT(task_clock.value, 0);
  }
  if (!hidden.empty()) GTEST_SKIP() << "hardware counters unavailable: " << hidden;
  const core::CounterReading& cycles = report->readings[0];
  const core::CounterReading& instructions = report->readings[1];
  EXPECT_GT(cycles.value, 1e6);
  EXPECT_GT(instructions.value, 1e6);
}

}  // namespace
}  // namespace maplex::agent

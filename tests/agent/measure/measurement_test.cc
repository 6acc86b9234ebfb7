#include "agent/measure/measurement.h"

#include <cmath>

#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

TEST(ComputeLatencyStatsTest, KnownSample) {
  // Sorted: 1 2 3 4 10
  LatencyStats stats = ComputeLatencyStats({4, 1, 10, 3, 2});
  EXPECT_EQ(stats.repeats, 5);
  EXPECT_DOUBLE_EQ(stats.median_ms, 3);
  EXPECT_DOUBLE_EQ(stats.p90_ms, 4 + 0.6 * 6);  // position 3.6
  EXPECT_DOUBLE_EQ(stats.mean_ms, 4);
  EXPECT_DOUBLE_EQ(stats.min_ms, 1);
  EXPECT_DOUBLE_EQ(stats.max_ms, 10);
  const double stddev = std::sqrt((9 + 4 + 1 + 0 + 36) / 4.0);
  EXPECT_DOUBLE_EQ(stats.stddev_ms, stddev);
  EXPECT_DOUBLE_EQ(stats.cv, stddev / 4);
  EXPECT_NEAR(stats.median_cv, 1.2533 * stddev / (std::sqrt(5.0) * 3), 1e-12);
}

TEST(ComputeLatencyStatsTest, EvenCountMedianAveragesTheMiddle) {
  EXPECT_DOUBLE_EQ(ComputeLatencyStats({1, 2, 3, 4}).median_ms, 2.5);
}

TEST(ComputeLatencyStatsTest, DegenerateSamples) {
  LatencyStats empty = ComputeLatencyStats({});
  EXPECT_EQ(empty.repeats, 0);
  EXPECT_EQ(empty.median_ms, 0);
  LatencyStats one = ComputeLatencyStats({2.5});
  EXPECT_EQ(one.repeats, 1);
  EXPECT_DOUBLE_EQ(one.median_ms, 2.5);
  EXPECT_DOUBLE_EQ(one.p90_ms, 2.5);
  EXPECT_EQ(one.stddev_ms, 0);
  EXPECT_EQ(one.median_cv, 0);
}

}  // namespace
}  // namespace maplex::agent

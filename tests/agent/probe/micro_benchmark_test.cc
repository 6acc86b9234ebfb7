#include "agent/probe/micro_benchmark.h"

#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

TEST(FindLatencyKneeTest, PicksTheSizeBeforeTheSteepestRise) {
  std::vector<LatencyPoint> curve = {{16 << 10, 1.0},   {32 << 10, 1.1},
                                     {64 << 10, 3.0},                       // L1 -> L2: x2.7
                                     {128 << 10, 3.1},  {256 << 10, 12.0},  // L2 -> L3: x3.9
                                     {512 << 10, 12.5}, {1 << 20, 80.0}};   // L3 -> DRAM: x6.4
  EXPECT_EQ(FindLatencyKnee(curve), 512 << 10);
  EXPECT_EQ(FindLatencyKnee({}), 0);
  EXPECT_EQ(FindLatencyKnee({{1024, 1.0}}), 0);
}

TEST(RunMicroBenchmarksTest, RejectsNonsense) {
  MicroBenchmarkOptions options;
  options.gemm_size = 0;
  EXPECT_EQ(RunMicroBenchmarks(options, RealClock()).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = MicroBenchmarkOptions();
  options.chase_max_bytes = options.chase_min_bytes / 2;
  EXPECT_EQ(RunMicroBenchmarks(options, RealClock()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RunMicroBenchmarksTest, SmallRunGivesPlausibleFigures) {
  MicroBenchmarkOptions options;
  options.bandwidth_bytes = 8 << 20;
  options.bandwidth_passes = 1;
  options.gemm_size = 64;
  options.gemm_repeats = 2;
  options.chase_min_bytes = 16 << 10;
  options.chase_max_bytes = 4 << 20;
  options.chase_loads = 1 << 14;
  absl::StatusOr<MicroBenchmarkFingerprint> result = RunMicroBenchmarks(options, RealClock());
  ASSERT_TRUE(result.ok()) << result.status();
  // Bounds any real processor of the last twenty years lands in, even under sanitizers.
  EXPECT_GT(result->memory_bandwidth_gbs, 0.05);
  EXPECT_LT(result->memory_bandwidth_gbs, 2000);
  EXPECT_GT(result->gemm_gflops, 0.01);
  EXPECT_LT(result->gemm_gflops, 10000);
  ASSERT_EQ(result->latency_curve.size(), 9u);  // 16K .. 4M
  for (const LatencyPoint& point : result->latency_curve) {
    EXPECT_GT(point.nanos_per_load, 0);
  }
  EXPECT_GE(result->cache_knee_bytes, 16 << 10);
  EXPECT_LT(result->cache_knee_bytes, 4 << 20);
  EXPECT_GT(result->elapsed_seconds, 0);
}

}  // namespace
}  // namespace maplex::agent

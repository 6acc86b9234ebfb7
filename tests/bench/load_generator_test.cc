#include "bench/load_generator.h"

#include <vector>

#include "gtest/gtest.h"

namespace maplex::bench {
namespace {

TEST(NearestRankPercentileTest, EmptyIsZero) {
  std::vector<double> v;
  EXPECT_EQ(NearestRankPercentile(v, 0.5), 0);
}

TEST(NearestRankPercentileTest, PicksTheNearestRankOfUnsortedValues) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // 1..100, reversed
  EXPECT_EQ(NearestRankPercentile(v, 0.50), 50);
  EXPECT_EQ(NearestRankPercentile(v, 0.99), 99);
  EXPECT_EQ(NearestRankPercentile(v, 1.0), 100);
  EXPECT_EQ(NearestRankPercentile(v, 0.0), 1);
}

TEST(NearestRankPercentileTest, SmallSamplesRoundUp) {
  std::vector<double> v = {30, 10, 20};
  EXPECT_EQ(NearestRankPercentile(v, 0.5), 20);   // rank ceil(1.5) = 2
  EXPECT_EQ(NearestRankPercentile(v, 0.99), 30);  // rank 3: the tail is not interpolated away
  EXPECT_EQ(NearestRankPercentile(v, 0.34), 20);
  EXPECT_EQ(NearestRankPercentile(v, 0.33), 10);
}

TEST(NearestRankPercentileTest, OutOfRangeQuantilesClamp) {
  std::vector<double> v = {5, 7};
  EXPECT_EQ(NearestRankPercentile(v, -1), 5);
  EXPECT_EQ(NearestRankPercentile(v, 2), 7);
}

}  // namespace
}  // namespace maplex::bench

#include "core/eval/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

TEST(MetricsTest, AverageRanksShareTies) {
  EXPECT_THAT(AverageRanks({10, 20, 20, 5}), ::testing::ElementsAre(2, 3.5, 3.5, 1));
}

TEST(MetricsTest, SpearmanWithTiesMatchesHandComputation) {
  // a ranks 1,2,3,4; b = {1,2,2,3} ranks 1,2.5,2.5,4. Centred (mean 2.5):
  // a: -1.5,-0.5,0.5,1.5; b: -1.5,0,0,1.5. sum ab = 2.25+0+0+2.25 = 4.5;
  // sum aa = 5; sum bb = 4.5; rho = 4.5 / sqrt(22.5) = 0.948683.
  EXPECT_NEAR(SpearmanRho({1, 2, 3, 4}, {1, 2, 2, 3}), 0.9486833, 1e-6);
  EXPECT_DOUBLE_EQ(SpearmanRho({1, 2, 3}, {30, 20, 10}), -1);
  EXPECT_EQ(SpearmanRho({1, 1, 1}, {1, 2, 3}), 0);  // constant side
}

TEST(MetricsTest, AccuracyWithinMapeAndCoverage) {
  // Errors: 0 %, +4 %, -10 %, +20 %.
  const std::vector<double> measured = {100, 100, 100, 50};
  const std::vector<LatencyPrediction> p = {
      {100, 90, 110}, {104, 105, 110}, {90, 80, 95}, {60, 40, 70}};
  AccuracyMetrics m = ComputeAccuracy(p, measured);
  EXPECT_EQ(m.count, 4);
  EXPECT_DOUBLE_EQ(m.acc5, 0.5);    // 0 % and 4 %
  EXPECT_DOUBLE_EQ(m.acc10, 0.75);  // and exactly 10 %
  EXPECT_NEAR(m.mape, (0 + 0.04 + 0.10 + 0.20) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(m.coverage90, 0.5);  // 1st and 4th intervals hold the measurement
  EXPECT_NEAR(m.spearman, SpearmanRho({100, 104, 90, 60}, measured), 1e-12);
  EXPECT_EQ(ComputeAccuracy({}, {}).count, 0);
}

}  // namespace
}  // namespace maplex::core

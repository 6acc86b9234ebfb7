// ExpandIntervalFactors: the client's side of PredictRequest.interval_factors.
#include <cmath>

#include "client/client.h"
#include "gtest/gtest.h"

namespace maplex::client {
namespace {

namespace v1 = maplex::v1;

TEST(ExpandIntervalFactorsTest, FactorsBecomeTheTwoColumnsAndAreCleared) {
  v1::PredictionColumns c;
  c.add_latency_ms(2.0);
  c.add_latency_ms(10.0);
  c.set_lower_factor(std::exp(-0.1));
  c.set_upper_factor(std::exp(0.1));
  ExpandIntervalFactors(&c);
  ASSERT_EQ(c.lower_ms_size(), 2);
  ASSERT_EQ(c.upper_ms_size(), 2);
  EXPECT_EQ(c.lower_ms(1), 10.0 * std::exp(-0.1));  // as the model computes it, bit for bit
  EXPECT_EQ(c.upper_ms(0), 2.0 * std::exp(0.1));
  EXPECT_EQ(c.lower_factor(), 0);
  EXPECT_EQ(c.upper_factor(), 0);
}

TEST(ExpandIntervalFactorsTest, ColumnsAlreadyThereAreKept) {
  v1::PredictionColumns c;
  c.add_latency_ms(2.0);
  c.add_lower_ms(1.5);
  c.add_upper_ms(3.0);
  c.set_lower_factor(0.5);  // a malformed answer carrying both: the columns win
  c.set_upper_factor(2.0);
  ExpandIntervalFactors(&c);
  ASSERT_EQ(c.lower_ms_size(), 1);
  ASSERT_EQ(c.upper_ms_size(), 1);
  EXPECT_EQ(c.lower_ms(0), 1.5);
  EXPECT_EQ(c.upper_ms(0), 3.0);
  EXPECT_EQ(c.lower_factor(), 0);
  // Without factors nothing is added.
  v1::PredictionColumns bare;
  bare.add_latency_ms(2.0);
  ExpandIntervalFactors(&bare);
  EXPECT_EQ(bare.lower_ms_size(), 0);
}

}  // namespace
}  // namespace maplex::client

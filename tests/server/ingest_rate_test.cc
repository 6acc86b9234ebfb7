#include "server/ingest_rate.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::server {
namespace {

using ::testing::HasSubstr;

class IngestRateTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(1000);
  IngestRateLimiter limiter_{10, 100, [this] { return now_; }};
};

TEST_F(IngestRateTest, ANewTokenHasAFullBurst) {
  EXPECT_TRUE(limiter_.Take(1, 100).ok());
  absl::Status s = limiter_.Take(1, 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("10 measurements/s"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("fits in 0.1 s"));
}

TEST_F(IngestRateTest, RefillsAtTheRateUpToTheBurst) {
  ASSERT_TRUE(limiter_.Take(1, 100).ok());
  now_ += absl::Seconds(2);  // 20 back
  EXPECT_FALSE(limiter_.Take(1, 21).ok());
  EXPECT_TRUE(limiter_.Take(1, 20).ok());
  now_ += absl::Hours(1);  // never more than the burst
  EXPECT_TRUE(limiter_.Take(1, 100).ok());
  EXPECT_FALSE(limiter_.Take(1, 1).ok());
}

TEST_F(IngestRateTest, ARefusedBatchTakesNothing) {
  ASSERT_TRUE(limiter_.Take(1, 60).ok());
  EXPECT_FALSE(limiter_.Take(1, 50).ok());
  EXPECT_TRUE(limiter_.Take(1, 40).ok());
}

TEST_F(IngestRateTest, TokensHaveTheirOwnBuckets) {
  ASSERT_TRUE(limiter_.Take(1, 100).ok());
  EXPECT_FALSE(limiter_.Take(1, 1).ok());
  EXPECT_TRUE(limiter_.Take(2, 100).ok());
}

}  // namespace
}  // namespace maplex::server

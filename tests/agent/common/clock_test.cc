#include "agent/common/clock.h"

#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

TEST(RealClockTest, IsMonotonic) {
  const Clock& clock = RealClock();
  int64_t previous = clock.NowNanos();
  for (int i = 0; i < 1000; ++i) {
    int64_t now = clock.NowNanos();
    EXPECT_GE(now, previous);
    previous = now;
  }
}

TEST(ManualClockTest, MovesOnlyWhenTold) {
  ManualClock clock(5);
  EXPECT_EQ(clock.NowNanos(), 5);
  EXPECT_EQ(clock.NowNanos(), 5);
  clock.AdvanceNanos(10);
  EXPECT_EQ(clock.NowNanos(), 15);
  clock.AdvanceMillis(1.5);
  EXPECT_EQ(clock.NowNanos(), 1'500'015);
}

}  // namespace
}  // namespace maplex::agent

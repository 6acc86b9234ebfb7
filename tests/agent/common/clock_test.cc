#include "agent/common/clock.h"

#include <chrono>
#include <thread>

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

TEST(ThreadCpuClockTest, CountsWorkNotSleep) {
  const Clock& cpu = ThreadCpuClock();
  int64_t before = cpu.NowNanos();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_LT(cpu.NowNanos() - before, 10'000'000);  // a sleeping thread uses no CPU
  before = cpu.NowNanos();
  const int64_t wall_start = RealClock().NowNanos();
  volatile double sink = 0;
  while (RealClock().NowNanos() - wall_start < 20'000'000) sink = sink + 1;
  EXPECT_GT(cpu.NowNanos() - before, 2'000'000);  // spinning does, unless starved
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

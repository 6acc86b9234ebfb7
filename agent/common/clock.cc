#include "agent/common/clock.h"

#include <time.h>

#include <chrono>

namespace maplex::agent {
namespace {

class SteadyClock : public Clock {
 public:
  int64_t NowNanos() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

class ThreadCpuTimeClock : public Clock {
 public:
  int64_t NowNanos() const override {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }
};

}  // namespace

const Clock& ThreadCpuClock() {
  static const ThreadCpuTimeClock* clock = new ThreadCpuTimeClock();
  return *clock;
}

const Clock& RealClock() {
  static const SteadyClock* clock = new SteadyClock();
  return *clock;
}

}  // namespace maplex::agent

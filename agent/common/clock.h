// The agent's view of time. Everything that times something (the micro-benchmarks, the
// counter reader, the measurement protocol) takes a Clock so that tests can drive time
// by hand instead of sleeping.
//
//   const Clock& clock = RealClock();
//   int64_t start = clock.NowNanos();
//   ...;
//   double ms = (clock.NowNanos() - start) / 1e6;
#ifndef MAPLEX_AGENT_COMMON_CLOCK_H_
#define MAPLEX_AGENT_COMMON_CLOCK_H_

#include <cstdint>

namespace maplex::agent {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic nanoseconds since an arbitrary, fixed origin. Never goes backwards.
  virtual int64_t NowNanos() const = 0;
};

// The process-wide monotonic clock (std::chrono::steady_clock). Thread-safe; not owned by
// the caller.
const Clock& RealClock();

// CPU time consumed by the calling thread (CLOCK_THREAD_CPUTIME_ID): stands still while the
// thread is preempted or waits, so it times work on one thread without the time other
// processes took its CPU. Each reading is of the thread that reads it. Not owned by the caller.
const Clock& ThreadCpuClock();

// A clock that only moves when told to. Not thread-safe.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_nanos = 0) : now_(start_nanos) {}
  int64_t NowNanos() const override { return now_; }
  void AdvanceNanos(int64_t nanos) { now_ += nanos; }
  void AdvanceMillis(double millis) { now_ += static_cast<int64_t>(millis * 1e6); }

 private:
  int64_t now_;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_COMMON_CLOCK_H_

#include "agent/common/clock.h"

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

}  // namespace

const Clock& RealClock() {
  static const SteadyClock* clock = new SteadyClock();
  return *clock;
}

}  // namespace maplex::agent

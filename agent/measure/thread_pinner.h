// Pinning the measuring thread to CPUs, where the OS allows it, so that the scheduler
// does not move the inference between cores mid-run. A seam: tests pass a fake.
//
//   AffinityThreadPinner pinner;
//   absl::StatusOr<std::vector<int>> cpus = pinner.Pin(/*threads=*/2);
//   ... measure ...
//   pinner.Unpin();
#ifndef MAPLEX_AGENT_MEASURE_THREAD_PINNER_H_
#define MAPLEX_AGENT_MEASURE_THREAD_PINNER_H_

#include <sched.h>

#include <vector>

#include "absl/status/statusor.h"

namespace maplex::agent {

class ThreadPinner {
 public:
  virtual ~ThreadPinner() = default;
  // Restricts the calling thread to `threads` CPUs and returns them. An error (with the
  // OS reason) when the OS refuses; the thread is then left as it was.
  virtual absl::StatusOr<std::vector<int>> Pin(int threads) = 0;
  // Restores the calling thread's CPU set from before the last successful Pin.
  virtual void Unpin() = 0;
};

// sched_setaffinity(2) on the calling thread: the first `threads` CPUs of the set the
// process may use (all of them if there are fewer). Threads the calling thread starts
// afterwards (OpenMP workers) inherit the set; workers that already exist keep theirs.
class AffinityThreadPinner : public ThreadPinner {
 public:
  absl::StatusOr<std::vector<int>> Pin(int threads) override;
  void Unpin() override;

 private:
  bool pinned_ = false;
  cpu_set_t saved_;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_MEASURE_THREAD_PINNER_H_

#include "agent/measure/thread_pinner.h"

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {

absl::StatusOr<std::vector<int>> AffinityThreadPinner::Pin(int threads) {
  if (threads < 1) return absl::InvalidArgumentError("threads must be at least 1");
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return absl::UnavailableError(absl::StrCat("sched_getaffinity: ", std::strerror(errno)));
  }
  cpu_set_t wanted;
  CPU_ZERO(&wanted);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE && static_cast<int>(cpus.size()) < threads; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) {
      CPU_SET(cpu, &wanted);
      cpus.push_back(cpu);
    }
  }
  if (sched_setaffinity(0, sizeof(wanted), &wanted) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("sched_setaffinity: ", std::strerror(errno)));
  }
  if (!pinned_) saved_ = allowed;
  pinned_ = true;
  return cpus;
}

void AffinityThreadPinner::Unpin() {
  if (!pinned_) return;
  sched_setaffinity(0, sizeof(saved_), &saved_);
  pinned_ = false;
}

}  // namespace maplex::agent

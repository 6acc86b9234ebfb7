// Process plumbing shared by maplex-server and maplex-agent: flag defaults from the
// environment, stop signals handled on a thread of our choosing, and background threads
// that yield the CPU to foreground work.
//
//   ABSL_FLAG(std::string, db, EnvOr("MAPLEX_DB", "maplex.db"), "...");
//   sigset_t stop = BlockStopSignals();   // before any thread starts
//   int signal = 0;
//   sigwait(&stop, &signal);              // SIGTERM or SIGINT arrived
#ifndef MAPLEX_PLATFORM_PROCESS_H_
#define MAPLEX_PLATFORM_PROCESS_H_

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace maplex {

// The environment variable `name`, or `fallback` when it is unset or empty.
inline std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Malformed values EnvOr met, one message each. Flag defaults are computed during static
// initialization, before main could print or exit, so EnvOr records the error, returns the
// fallback, and main refuses to start with CheckEnvValues().
inline std::vector<std::string>& EnvValueErrors() {
  static std::vector<std::string> errors;
  return errors;
}

// The same for a number: the whole text must be a finite number ("64MiB", "abc", "1e999"
// and "nan" are errors recorded for CheckEnvValues, and give `fallback`).
inline double EnvOr(const char* name, double fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  double parsed = 0;
  if (absl::SimpleAtod(value, &parsed) && std::isfinite(parsed)) return parsed;
  EnvValueErrors().push_back(absl::StrCat(name, "=\"", value, "\" is not a number"));
  return fallback;
}
inline int EnvOr(const char* name, int fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  int parsed = 0;
  if (absl::SimpleAtoi(value, &parsed)) return parsed;
  EnvValueErrors().push_back(
      absl::StrCat(name, "=\"", value, "\" is not a whole number in the range of int"));
  return fallback;
}
// And for a boolean: true/false, yes/no, 1/0 (any case); anything else is an error.
inline bool EnvOr(const char* name, bool fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  bool parsed = false;
  if (absl::SimpleAtob(value, &parsed)) return parsed;
  EnvValueErrors().push_back(absl::StrCat(name, "=\"", value, "\" is not true or false"));
  return fallback;
}

// OK, or InvalidArgument naming every environment variable EnvOr could not parse.
inline absl::Status CheckEnvValues() {
  if (EnvValueErrors().empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(EnvValueErrors(), "; "));
}

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts later, so
// that they can be taken with sigwait() on the returned set instead of interrupting work.
inline sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return stop;
}

// Raises the calling thread's nice value by `steps` (on Linux the nice value belongs to
// the thread), so that it runs only when foreground threads leave a core idle. False when
// the kernel refuses; an unprivileged process cannot take the step back.
inline bool LowerThreadPriority(int steps) {
  const id_t thread = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, thread);
  if (now == -1 && errno != 0) return false;
  return setpriority(PRIO_PROCESS, thread, now + steps) == 0;
}

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_PROCESS_H_

#include "agent/counters/perf_counter_source.h"

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

struct PerfEventType {
  uint32_t type;
  uint64_t config;
};

constexpr uint64_t CacheConfig(uint64_t cache, uint64_t op, uint64_t result) {
  return cache | (op << 8) | (result << 16);
}

std::optional<PerfEventType> LookUp(const std::string& name) {
  static const auto* table = new std::map<std::string, PerfEventType>{
      {"cpu-cycles", {PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES}},
      {"instructions", {PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS}},
      {"cache-references", {PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES}},
      {"cache-misses", {PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES}},
      {"branch-misses", {PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES}},
      {"L1-dcache-loads",
       {PERF_TYPE_HW_CACHE, CacheConfig(PERF_COUNT_HW_CACHE_L1D, PERF_COUNT_HW_CACHE_OP_READ,
                                        PERF_COUNT_HW_CACHE_RESULT_ACCESS)}},
      {"L1-dcache-load-misses",
       {PERF_TYPE_HW_CACHE, CacheConfig(PERF_COUNT_HW_CACHE_L1D, PERF_COUNT_HW_CACHE_OP_READ,
                                        PERF_COUNT_HW_CACHE_RESULT_MISS)}},
      {"LLC-loads",
       {PERF_TYPE_HW_CACHE, CacheConfig(PERF_COUNT_HW_CACHE_LL, PERF_COUNT_HW_CACHE_OP_READ,
                                        PERF_COUNT_HW_CACHE_RESULT_ACCESS)}},
      {"LLC-load-misses",
       {PERF_TYPE_HW_CACHE, CacheConfig(PERF_COUNT_HW_CACHE_LL, PERF_COUNT_HW_CACHE_OP_READ,
                                        PERF_COUNT_HW_CACHE_RESULT_MISS)}},
      {"LLC-stores",
       {PERF_TYPE_HW_CACHE, CacheConfig(PERF_COUNT_HW_CACHE_LL, PERF_COUNT_HW_CACHE_OP_WRITE,
                                        PERF_COUNT_HW_CACHE_RESULT_ACCESS)}},
      {"LLC-store-misses",
       {PERF_TYPE_HW_CACHE, CacheConfig(PERF_COUNT_HW_CACHE_LL, PERF_COUNT_HW_CACHE_OP_WRITE,
                                        PERF_COUNT_HW_CACHE_RESULT_MISS)}},
      {"task-clock", {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK}},
      {"page-faults", {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS}},
      {"context-switches", {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES}},
      {"cpu-migrations", {PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS}},
  };
  auto it = table->find(name);
  if (it == table->end()) return std::nullopt;
  return it->second;
}

// One opened event; closes its descriptor when destroyed.
struct OpenedEvent {
  size_t index = 0;  // position in the request
  int fd = -1;
  uint64_t id = 0;
  OpenedEvent() = default;
  OpenedEvent(const OpenedEvent&) = delete;
  OpenedEvent& operator=(const OpenedEvent&) = delete;
  OpenedEvent(OpenedEvent&& other) noexcept : index(other.index), fd(other.fd), id(other.id) {
    other.fd = -1;
  }
  ~OpenedEvent() {
    if (fd >= 0) close(fd);
  }
};

// Either a group (first event leads) or independent events.
struct EventSet {
  bool grouped = false;
  std::vector<OpenedEvent> events;
};

int PerfEventOpen(const PerfEventType& type, int group_fd, bool grouped, bool user_only) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = type.type;
  attr.config = type.config;
  attr.disabled = group_fd < 0 ? 1 : 0;  // members follow their leader
  attr.exclude_kernel = user_only ? 1 : 0;
  attr.exclude_hv = 1;
  attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  if (grouped) attr.read_format |= PERF_FORMAT_GROUP | PERF_FORMAT_ID;
  return static_cast<int>(
      syscall(SYS_perf_event_open, &attr, /*pid=*/0, /*cpu=*/-1, group_fd, /*flags=*/0));
}

class Session {
 public:
  Session(const std::vector<std::string>& names, std::vector<PerfEventType> types)
      : types_(std::move(types)), readings_(names.size()) {
    for (size_t i = 0; i < names.size(); ++i) readings_[i].name = names[i];
  }

  // Opens `indices` as one group; on any failure closes what was opened and returns the
  // errno of the event that failed.
  std::optional<int> OpenGroup(const std::vector<size_t>& indices, EventSet& set) {
    set = EventSet();
    set.grouped = true;
    for (size_t index : indices) {
      int leader = set.events.empty() ? -1 : set.events.front().fd;
      int fd = OpenWithFallback(types_[index], leader, /*grouped=*/true);
      if (fd < 0) {
        int error = errno;
        set.events.clear();
        return error;
      }
      set.events.push_back(OpenedEvent());
      set.events.back().index = index;
      set.events.back().fd = fd;
      ioctl(fd, PERF_EVENT_IOC_ID, &set.events.back().id);
    }
    return std::nullopt;
  }

  // Opens each of `indices` on its own; failures are recorded in the readings.
  void OpenEach(const std::vector<size_t>& indices, EventSet& set) {
    set = EventSet();
    for (size_t index : indices) {
      int fd = OpenWithFallback(types_[index], -1, /*grouped=*/false);
      if (fd < 0) {
        readings_[index].unavailable_reason =
            absl::StrCat("perf_event_open: ", DescribePerfOpenError(errno));
        continue;
      }
      set.events.push_back(OpenedEvent());
      set.events.back().index = index;
      set.events.back().fd = fd;
    }
  }

  static void Start(EventSet& set) {
    for (OpenedEvent& event : set.events) {
      const int flag = set.grouped ? PERF_IOC_FLAG_GROUP : 0;
      ioctl(event.fd, PERF_EVENT_IOC_RESET, flag);
      ioctl(event.fd, PERF_EVENT_IOC_ENABLE, flag);
      if (set.grouped) break;  // the leader switches the whole group
    }
  }

  static void Stop(EventSet& set) {
    for (OpenedEvent& event : set.events) {
      ioctl(event.fd, PERF_EVENT_IOC_DISABLE, set.grouped ? PERF_IOC_FLAG_GROUP : 0);
      if (set.grouped) break;
    }
  }

  // Reads `set` into the readings. Returns false if a group was never scheduled.
  bool Read(const EventSet& set) {
    if (set.events.empty()) return true;
    if (set.grouped) {
      // { nr, time_enabled, time_running, { value, id }[nr] }
      std::vector<uint64_t> buffer(3 + 2 * set.events.size());
      ssize_t got = read(set.events.front().fd, buffer.data(), buffer.size() * 8);
      if (got < static_cast<ssize_t>(3 * 8) || buffer[2] == 0) return false;
      for (uint64_t i = 0; i < buffer[0] && 3 + 2 * i + 1 < buffer.size(); ++i) {
        for (const OpenedEvent& event : set.events) {
          if (event.id == buffer[3 + 2 * i + 1]) {
            Record(event.index, buffer[3 + 2 * i], buffer[1], buffer[2]);
          }
        }
      }
      return true;
    }
    for (const OpenedEvent& event : set.events) {
      uint64_t values[3] = {0, 0, 0};  // value, time_enabled, time_running
      if (read(event.fd, values, sizeof(values)) != static_cast<ssize_t>(sizeof(values))) {
        readings_[event.index].unavailable_reason = absl::StrCat("read: ", std::strerror(errno));
        continue;
      }
      Record(event.index, values[0], values[1], values[2]);
    }
    return true;
  }

  bool user_only() const { return user_only_; }
  std::vector<core::CounterReading> TakeReadings() {
    for (core::CounterReading& reading : readings_) {
      if (!reading.available && reading.unavailable_reason.empty()) {
        reading.unavailable_reason = "not in the group's read-out";
      }
    }
    return std::move(readings_);
  }

 private:
  int OpenWithFallback(const PerfEventType& type, int group_fd, bool grouped) {
    int fd = PerfEventOpen(type, group_fd, grouped, user_only_);
    if (fd < 0 && (errno == EACCES || errno == EPERM) && !user_only_) {
      // Unprivileged under perf_event_paranoid >= 2: user-space counting may still work.
      // Everything opened from here on is user-space only, and `method` says so.
      int retry = PerfEventOpen(type, group_fd, grouped, /*user_only=*/true);
      if (retry >= 0) {
        user_only_ = true;
        return retry;
      }
      errno = EACCES;
    }
    return fd;
  }

  void Record(size_t index, uint64_t value, uint64_t enabled, uint64_t running) {
    core::CounterReading& reading = readings_[index];
    if (running == 0) {
      reading.available = false;
      reading.unavailable_reason = "never scheduled on the PMU (counters all in use?)";
      return;
    }
    reading.available = true;
    reading.unavailable_reason.clear();
    // Multiplexed counters ran part of the time; scale as perf stat does.
    reading.value = running < enabled ? value * (double(enabled) / double(running)) : value;
  }

  std::vector<PerfEventType> types_;
  std::vector<core::CounterReading> readings_;
  bool user_only_ = false;
};

}  // namespace

std::string DescribePerfOpenError(int error) {
  const char* name = strerrorname_np(error);
  std::string hint;
  switch (error) {
    case ENOENT:
      hint = "hardware event not exposed (VM/container)";
      break;
    case EOPNOTSUPP:
      hint = "event not supported by this PMU";
      break;
    case ENODEV:
      hint = "no PMU for this event type";
      break;
    case EACCES:
    case EPERM:
      hint = "not permitted (perf_event_paranoid, CAP_PERFMON or a seccomp filter)";
      break;
    case ENOSYS:
      hint = "kernel built without perf events";
      break;
    case EINVAL:
      hint = "event invalid on this CPU";
      break;
    case EMFILE:
      hint = "too many open files";
      break;
    default:
      hint = std::strerror(error);
  }
  return absl::StrCat(name ? name : absl::StrCat("errno ", error), " \u2014 ", hint);
}

absl::StatusOr<CounterReport> PerfCounterSource::CountAround(const std::vector<std::string>& names,
                                                             absl::FunctionRef<void()> workload) {
  std::vector<PerfEventType> types;
  std::vector<size_t> hardware, software;
  for (size_t i = 0; i < names.size(); ++i) {
    std::optional<PerfEventType> type = LookUp(names[i]);
    if (!type) return absl::InvalidArgumentError(absl::StrCat("unknown counter: ", names[i]));
    types.push_back(*type);
    (type->type == PERF_TYPE_SOFTWARE ? software : hardware).push_back(i);
  }
  Session session(names, std::move(types));
  CounterReport report;

  EventSet hw, sw;
  std::string hw_method = "group";
  if (!hardware.empty()) {
    if (std::optional<int> error = session.OpenGroup(hardware, hw)) {
      hw_method = absl::StrCat("per-event (group: ", strerrorname_np(*error), ")");
      session.OpenEach(hardware, hw);
    }
  }
  std::string sw_method = "group";
  if (!software.empty()) {
    if (std::optional<int> error = session.OpenGroup(software, sw)) {
      sw_method = absl::StrCat("per-event (group: ", strerrorname_np(*error), ")");
      session.OpenEach(software, sw);
    }
  }

  Session::Start(sw);
  Session::Start(hw);
  const int64_t start = clock_.NowNanos();
  workload();
  report.workload_seconds = (clock_.NowNanos() - start) / 1e9;
  Session::Stop(hw);
  Session::Stop(sw);
  session.Read(sw);
  if (!session.Read(hw)) {
    // The group never fitted on the PMU at once: count again, multiplexed.
    hw_method = "per-event (group never scheduled; workload run twice)";
    session.OpenEach(hardware, hw);
    Session::Start(hw);
    workload();
    Session::Stop(hw);
    session.Read(hw);
  }
  report.method = absl::StrCat(hardware.empty() ? "" : "hardware: " + hw_method,
                               !hardware.empty() && !software.empty() ? "; " : "",
                               software.empty() ? "" : "software: " + sw_method,
                               session.user_only() ? "; user-space only" : "");
  report.readings = session.TakeReadings();
  return report;
}

}  // namespace maplex::agent

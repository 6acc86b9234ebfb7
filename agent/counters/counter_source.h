// Hardware performance counters read around a workload. CounterSource is the seam: the
// agent uses PerfCounterSource (perf_event_open), tests use a fake.
//
//   PerfCounterSource perf(RealClock());
//   absl::StatusOr<CounterReport> report =
//       perf.CountAround(MapleEdgeCounterNames(), [&] { runtime.Run(); });
//   for (const core::CounterReading& r : report->readings)
//     if (!r.available) LOG(r.name << ": " << r.unavailable_reason);
#ifndef MAPLEX_AGENT_COUNTERS_COUNTER_SOURCE_H_
#define MAPLEX_AGENT_COUNTERS_COUNTER_SOURCE_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "core/hardware/descriptor.h"

namespace maplex::agent {

enum class CounterKind { kHardware, kSoftware };

struct CounterEvent {
  std::string name;  // perf's name, e.g. "LLC-load-misses"
  CounterKind kind;
};

// The counters MAPLE-Edge describes a device with (11 hardware events) plus the software
// events the kernel keeps for every task, in the order reports list them.
const std::vector<CounterEvent>& MapleEdgeCounterSet();
std::vector<std::string> MapleEdgeCounterNames();

struct CounterReport {
  // One reading per requested name, in request order. Unavailable readings carry the
  // reason and value 0; values are never estimated.
  std::vector<core::CounterReading> readings;
  // Wall time of the workload the counters were read around.
  double workload_seconds = 0;
  // How the counters were read, e.g. "hardware: group; software: group", for the record.
  std::string method;
};

class CounterSource {
 public:
  virtual ~CounterSource() = default;
  // Runs `workload` once on the calling thread with the named counters counting that
  // thread, and reports each one. InvalidArgument for a name this source does not know.
  // A counter the device cannot read is not an error: it comes back unavailable.
  virtual absl::StatusOr<CounterReport> CountAround(const std::vector<std::string>& names,
                                                    absl::FunctionRef<void()> workload) = 0;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_COUNTERS_COUNTER_SOURCE_H_

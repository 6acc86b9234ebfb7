// CounterSource over Linux perf_event_open(2), counting the calling thread only.
//
// Hardware events are opened as one group (cpu-cycles leads) so their ratios come from
// the same instants; software events form a second group. If the hardware group cannot
// be opened, or was never scheduled because it asks for more counters than the PMU has,
// each hardware event is opened on its own instead (the kernel then time-multiplexes
// them and values are scaled by time_enabled / time_running, as `perf stat` does); in
// the second case the workload runs a second time. An event that still cannot be opened
// is reported unavailable with the errno and what it usually means, e.g.
//   "perf_event_open: ENOENT — hardware event not exposed (VM/container)".
// If the kernel refuses kernel-mode counting (perf_event_paranoid >= 2 without
// CAP_PERFMON) events are reopened user-space only and `method` says so.
//
// Threads the workload starts are not counted (inherited counters cannot be read as a
// group), so the reference workload should run single-threaded.
#ifndef MAPLEX_AGENT_COUNTERS_PERF_COUNTER_SOURCE_H_
#define MAPLEX_AGENT_COUNTERS_PERF_COUNTER_SOURCE_H_

#include "agent/common/clock.h"
#include "agent/counters/counter_source.h"

namespace maplex::agent {

class PerfCounterSource : public CounterSource {
 public:
  // `clock` times the workload and must outlive this object.
  explicit PerfCounterSource(const Clock& clock) : clock_(clock) {}

  absl::StatusOr<CounterReport> CountAround(const std::vector<std::string>& names,
                                            absl::FunctionRef<void()> workload) override;

 private:
  const Clock& clock_;
};

// "ENOENT — hardware event not exposed (VM/container)" and the like: the errno name and
// its usual meaning for perf_event_open.
std::string DescribePerfOpenError(int error);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_COUNTERS_PERF_COUNTER_SOURCE_H_

// Turns raw counter counts into figures comparable across devices and workload sizes,
// and packs them with the spec into a core::HardwareDescriptor.
//
//   absl::StatusOr<CounterReport> report = source.CountAround(names, workload);
//   std::vector<core::CounterReading> rates = NormalizeCounters(*report);
//   // rates: "ipc", "llc_load_miss_ratio", "branch_mpki", ... each available or not
//
// Raw counts grow with the workload; ratios do not. MAPLE-Edge feeds the regressor
// counts of one fixed reference workload, which our descriptor keeps as is; the ratios
// below are added for devices compared across different reference runs.
#ifndef MAPLEX_AGENT_COUNTERS_COUNTER_PROFILE_H_
#define MAPLEX_AGENT_COUNTERS_COUNTER_PROFILE_H_

#include <vector>

#include "agent/counters/counter_source.h"
#include "core/hardware/descriptor.h"

namespace maplex::agent {

// Derived figures, each available only when every count it needs is available and its
// denominator is positive; otherwise unavailable with the reason naming the missing count.
//   ipc                      instructions / cpu-cycles
//   cache_miss_ratio         cache-misses / cache-references
//   l1d_load_miss_ratio      L1-dcache-load-misses / L1-dcache-loads
//   llc_load_miss_ratio      LLC-load-misses / LLC-loads
//   llc_store_miss_ratio     LLC-store-misses / LLC-stores
//   branch_mpki              branch-misses per 1000 instructions
//   effective_ghz            cpu-cycles / task-clock time
//   cpu_utilization          task-clock time / workload wall time
//   page_faults_per_ms       page-faults per task-clock millisecond
//   context_switches_per_ms  context-switches per task-clock millisecond
//   cpu_migrations_per_ms    cpu-migrations per task-clock millisecond
// task-clock counts nanoseconds.
std::vector<core::CounterReading> NormalizeCounters(const CounterReport& report);

// The descriptor the agent uplinks: `spec`, the raw readings, then the normalised ones,
// and the workload time.
core::HardwareDescriptor MakeHardwareDescriptor(const core::HardwareSpec& spec,
                                                const CounterReport& report);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_COUNTERS_COUNTER_PROFILE_H_

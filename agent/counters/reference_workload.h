// The reference workload the agent reads hardware counters around: the NB201 network
// with every edge nor_conv_3x3 (the heaviest cell), batch 1, one thread, so that counts
// from different devices describe the same work. One thread because PerfCounterSource
// counts the calling thread only.
//
//   EigenRuntime runtime;
//   PerfCounterSource perf(RealClock());
//   absl::StatusOr<CounterReport> report = CountReferenceWorkload(perf, runtime);
//   core::HardwareDescriptor d = MakeHardwareDescriptor(probe.spec, *report);
#ifndef MAPLEX_AGENT_COUNTERS_REFERENCE_WORKLOAD_H_
#define MAPLEX_AGENT_COUNTERS_REFERENCE_WORKLOAD_H_

#include "absl/status/statusor.h"
#include "agent/counters/counter_source.h"
#include "agent/runtime/runtime.h"

namespace maplex::agent {

// The reference cell: all six edges nor_conv_3x3.
Nb201Cell ReferenceCell();

// Prepares `runtime` with the reference cell (batch 1, 1 thread), runs it once untimed
// to warm caches, then reads the MapleEdgeCounterSet() around `runs` inferences.
// InvalidArgument for runs < 1; Prepare and Run errors are returned as they are.
absl::StatusOr<CounterReport> CountReferenceWorkload(CounterSource& source, Runtime& runtime,
                                                     int runs = 10);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_COUNTERS_REFERENCE_WORKLOAD_H_

// The measurement protocol: how the agent turns a runtime into one latency figure.
//
//   DeviceConfig config;
//   config.hardware_fingerprint = probe.fingerprint;
//   config.threads = 2;
//   AffinityThreadPinner pinner;
//   absl::StatusOr<Measurement> m =
//       MeasureLatency(runtime, arch, config, MeasurementOptions(), RealClock(), &pinner);
//
// Procedure (MeasurementProtocol::version 1):
//   1. Pin the calling thread to `threads` CPUs if asked (before Prepare, so that worker
//      threads the runtime starts inherit the set); a refusal is recorded, not fatal.
//   2. Runtime::Prepare(arch, batch, threads); never timed.
//   3. `warmups` untimed runs (caches, page faults, JIT, frequency ramp-up).
//   4. Timed runs until, after at least `min_repeats`, the estimated CV of the median
//      falls below `target_median_cv`; or `max_repeats` runs; or `max_seconds` of timed
//      runs. A run's latency is the runtime's own figure when it reports one, else the
//      clock around Run().
//   5. Statistics over the timed runs; the CPU set is restored.
#ifndef MAPLEX_AGENT_MEASURE_LATENCY_MEASURER_H_
#define MAPLEX_AGENT_MEASURE_LATENCY_MEASURER_H_

#include "absl/status/statusor.h"
#include "agent/common/clock.h"
#include "agent/measure/measurement.h"
#include "agent/measure/thread_pinner.h"
#include "agent/runtime/runtime.h"

namespace maplex::agent {

struct MeasurementOptions {
  int warmups = 3;
  int min_repeats = 5;
  int max_repeats = 200;
  double max_seconds = 10;
  double target_median_cv = 0.01;
  bool pin_threads = true;
};

// Measures `arch` (any space the runtime builds) on `runtime` in `config` (batch, threads; its
// runtime name is filled in from `runtime`). `pinner` may be null when options.pin_threads is
// false. InvalidArgument for inconsistent options, a precision other than "fp32" (the only one the
// built-in runtimes execute), or batch/threads < 1. Errors from Prepare or Run are returned as they
// are; nothing partial is returned.
absl::StatusOr<Measurement> MeasureLatency(Runtime& runtime, const core::Architecture& arch,
                                           DeviceConfig config, const MeasurementOptions& options,
                                           const Clock& clock, ThreadPinner* pinner);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_MEASURE_LATENCY_MEASURER_H_

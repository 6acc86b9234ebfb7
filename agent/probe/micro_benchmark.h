// Micro-benchmark fingerprint: three quick measurements that describe a processor even
// where its performance counters are hidden (VMs, containers) and its specs are vague.
//
//   absl::StatusOr<MicroBenchmarkFingerprint> mb =
//       RunMicroBenchmarks(MicroBenchmarkOptions(), RealClock());
//   // mb->memory_bandwidth_gbs, mb->gemm_gflops, mb->cache_knee_bytes
//
// All three run on the calling thread only: they describe one core and its path to
// memory, which is what a batch-1, few-thread inference sees. With default options the
// whole run takes well under 2 s (about 0.5 s on a loaded 2-vCPU EPYC VM).
#ifndef MAPLEX_AGENT_PROBE_MICRO_BENCHMARK_H_
#define MAPLEX_AGENT_PROBE_MICRO_BENCHMARK_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/common/clock.h"

namespace maplex::agent {

struct MicroBenchmarkOptions {
  // Streaming read over a buffer larger than the caches we expect to meet (edge boards
  // and desktop parts have at most a few MiB of last-level cache, a Xeon Gold 6240 socket
  // 24.75 MiB); it is also what the agent's peak resident memory is made of, so no larger.
  int64_t bandwidth_bytes = int64_t{32} << 20;
  int bandwidth_passes = 3;  // best pass is kept
  // Square single-precision GEMM (Eigen), best of `gemm_repeats`.
  int gemm_size = 256;
  int gemm_repeats = 10;
  // Pointer chase over a random cycle of 64-byte lines for working sets from
  // chase_min_bytes to chase_max_bytes, doubling.
  int64_t chase_min_bytes = int64_t{16} << 10;
  int64_t chase_max_bytes = int64_t{32} << 20;
  // Dependent loads per timed segment; each working set is timed in three segments and
  // the fastest is kept.
  int64_t chase_loads = int64_t{1} << 16;
};

struct LatencyPoint {
  int64_t working_set_bytes = 0;
  double nanos_per_load = 0;
};

struct MicroBenchmarkFingerprint {
  double memory_bandwidth_gbs = 0;  // single-thread streaming read, 1e9 bytes/s
  double gemm_gflops = 0;           // single-thread fp32 GEMM
  int64_t cache_knee_bytes = 0;     // see FindLatencyKnee()
  std::vector<LatencyPoint> latency_curve;
  double elapsed_seconds = 0;  // wall time of the whole run
};

// Runs the three micro-benchmarks, timing them with `clock`. InvalidArgument for
// non-positive sizes or counts, or a chase range that is empty or above 1 GiB.
absl::StatusOr<MicroBenchmarkFingerprint> RunMicroBenchmarks(const MicroBenchmarkOptions& options,
                                                             const Clock& clock);

// The working set just before the steepest rise in load latency (largest ratio between
// consecutive points): the effective capacity of the cache level whose overflow hurts
// most, usually the LLC. 0 for fewer than two points.
int64_t FindLatencyKnee(const std::vector<LatencyPoint>& curve);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_PROBE_MICRO_BENCHMARK_H_

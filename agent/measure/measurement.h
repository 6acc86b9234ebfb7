// What the agent records about one latency measurement: the device configuration it
// belongs to, the statistics, the raw samples and how it was measured. These structs are
// what the spool stores and the uplink sends.
//
//   Measurement m = *MeasureLatency(runtime, arch, config, MeasurementOptions(), clock,
//                                   &pinner);
//   // m.stats.median_ms, m.stats.cv, m.protocol.stop_reason, m.protocol.pinned ...
#ifndef MAPLEX_AGENT_MEASURE_MEASUREMENT_H_
#define MAPLEX_AGENT_MEASURE_MEASUREMENT_H_

#include <string>
#include <vector>

#include "core/arch/architecture_space.h"

namespace maplex::agent {

// A latency belongs to hardware x runtime x precision x batch x threads (DESIGN.md,
// "Identity of a device").
struct DeviceConfig {
  std::string hardware_fingerprint;  // DeviceProbe::fingerprint
  std::string runtime;               // Runtime::name()
  std::string precision = "fp32";
  int batch = 1;
  int threads = 1;
};

// How a measurement was taken; stored with it so that figures taken under different
// protocols are never silently mixed.
struct MeasurementProtocol {
  int version = 4;  // bump when the procedure of latency_measurer.h changes meaning
  int warmups = 0;  // the minimum asked for; warmup_runs is what was run
  double warmup_seconds = 0;
  int warmup_runs = 0;  // of the returned attempt
  int min_repeats = 0;
  double min_seconds = 0;
  int max_repeats = 0;
  double max_seconds = 0;
  double target_median_cv = 0;
  // "thread_cpu": the calling thread's CPU time around Runtime::Run; "agent_clock": the
  // agent's monotonic wall clock; "runtime": the runtime reported each latency itself;
  // "mixed": runtime figures for some runs, the agent's clock for the others.
  std::string timing_source;
  bool pinning_requested = false;
  bool pinned = false;
  std::vector<int> pinned_cpus;
  std::string pinning_note;  // why pinning failed, or its limits
  // "converged" (median CV below target), "max_repeats" or "max_time".
  std::string stop_reason;
  // Interference (agent/measure/interference.h), of the returned attempt.
  int timed_runs = 0;      // all timed runs, kept or not
  int preempted_runs = 0;  // timed runs during which the process was switched out
  int excluded_runs = 0;   // of those, left out of the statistics (wall-clock timing only)
  // The reference kernel around the measurement over its quiet baseline (the larger of the
  // readings before and after); 0 when not checked.
  double reference_slowdown = 0;
  double reference_baseline_ms = 0;
  // "unchecked" (no sensor), "none" (first attempt clean), "repeated" (an earlier attempt
  // was disturbed; this one is clean), "flagged" (every attempt disturbed: the least
  // disturbed is returned, and should be treated with suspicion).
  std::string interference = "unchecked";
  int attempts = 0;
  // Seconds spent waiting for disturbances to pass while measuring this architecture
  // (protocol version 3, step 9 of latency_measurer.h, over every independent measurement);
  // 0 when no wait was needed.
  double waited_seconds = 0;
  double wall_median_ms = 0;  // the wall clock's median over the same kept runs
  // Runs scaled by the interleaved reference kernel (MeasurementOptions::interleave_reference);
  // raw_median_ms is the median before scaling.
  bool corrected = false;
  double raw_median_ms = 0;
  // The medians of every independent measurement taken (step 10 of latency_measurer.h), in
  // order; the returned one is among them.
  std::vector<double> independent_medians_ms;
};

struct LatencyStats {
  int repeats = 0;
  double median_ms = 0;
  double p10_ms = 0;  // linear interpolation between order statistics, as p90_ms
  double p90_ms = 0;  // linear interpolation between order statistics
  double mean_ms = 0;
  double stddev_ms = 0;  // sample standard deviation (n - 1)
  double min_ms = 0;
  double max_ms = 0;
  double cv = 0;  // stddev / mean: spread of single runs
  // Estimated coefficient of variation of the median itself,
  // 1.2533 * stddev / (sqrt(n) * median): the asymptotic standard error of a median for
  // roughly normal samples. What the protocol drives below its target.
  double median_cv = 0;
};

struct Measurement {
  DeviceConfig config;
  core::Architecture arch;  // an NB201 cell, an FBNet network, ...
  LatencyStats stats;
  std::vector<double> samples_ms;  // the timed repeats in order; warm-ups excluded
  MeasurementProtocol protocol;
};

// Statistics of `samples_ms`; all zero for an empty vector, spread zero for one sample.
LatencyStats ComputeLatencyStats(const std::vector<double>& samples_ms);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_MEASURE_MEASUREMENT_H_

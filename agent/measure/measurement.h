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
  int version = 1;  // bump when the procedure below changes meaning
  int warmups = 0;
  int min_repeats = 0;
  int max_repeats = 0;
  double max_seconds = 0;
  double target_median_cv = 0;
  // "agent_clock": the agent timed Runtime::Run with its monotonic clock;
  // "runtime": the runtime reported each latency itself; "mixed": some of each.
  std::string timing_source;
  bool pinning_requested = false;
  bool pinned = false;
  std::vector<int> pinned_cpus;
  std::string pinning_note;  // why pinning failed, or its limits
  // "converged" (median CV below target), "max_repeats" or "max_time".
  std::string stop_reason;
};

struct LatencyStats {
  int repeats = 0;
  double median_ms = 0;
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

// What a device configuration reveals about itself: its specification, the hardware
// performance counters read while it ran the reference workload, and which of those parts
// are known. Any part may be missing; a model reports which parts it used.
//
//   HardwareDescriptor d;
//   d.spec.category = DeviceCategory::kDesktopCpu;
//   d.spec.cores = 10;
//   d.counters.push_back({"instructions", /*available=*/true, 1.2e9, ""});
#ifndef MAPLEX_CORE_HARDWARE_DESCRIPTOR_H_
#define MAPLEX_CORE_HARDWARE_DESCRIPTOR_H_

#include <optional>
#include <string>
#include <vector>

namespace maplex::core {

enum class DeviceCategory { kUnknown, kDesktopGpu, kDesktopCpu, kMobile, kEdgeCpu, kAsic, kFpga };

// Parses "desktop_gpu", "edge_cpu", ... (the category column of the bundled devices CSV);
// anything else gives kUnknown.
DeviceCategory ParseDeviceCategory(const std::string& name);
const char* DeviceCategoryName(DeviceCategory category);

// Public specification figures of the hardware plus the configuration it ran in. Blank
// (nullopt) where unknown: public data often does not say which chip it was.
struct HardwareSpec {
  DeviceCategory category = DeviceCategory::kUnknown;
  std::string isa;                      // "x86_64", "aarch64", "cuda", ...
  std::optional<double> compute_units;  // CUDA cores, CPU cores or PEs
  std::optional<double> threads;        // hardware threads (CPUs)
  std::optional<double> base_clock_ghz;
  std::optional<double> boost_clock_ghz;
  std::optional<double> l2_mib;
  std::optional<double> llc_mib;
  std::optional<double> memory_gib;
  std::optional<double> memory_bandwidth_gbs;
  std::optional<double> tdp_w;
  // The configuration the latencies were measured in.
  int batch_size = 1;
  std::string precision = "fp32";  // "fp32", "fp16", "int8"
  int runtime_threads = 0;         // threads the runtime used; 0 = not stated
};

// One hardware performance counter read around the reference workload. A counter the
// device does not expose is reported with available = false and the reason; its value is
// never made up.
struct CounterReading {
  std::string name;  // perf name, e.g. "cpu-cycles", "LLC-load-misses"
  bool available = false;
  double value = 0;  // raw count over the reference workload, when available
  std::string unavailable_reason;
};

struct HardwareDescriptor {
  HardwareSpec spec;
  std::vector<CounterReading> counters;
  // Wall time of the reference workload the counters were read around (0 = not run).
  double reference_workload_seconds = 0;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_HARDWARE_DESCRIPTOR_H_

// Small synthetic device sets for core tests: every reference device has latencies for
// the whole NAS-Bench-201 space from a known formula, so a test can state the truth.
#ifndef MAPLEX_TESTS_CORE_SYNTHETIC_DEVICES_H_
#define MAPLEX_TESTS_CORE_SYNTHETIC_DEVICES_H_

#include <cmath>
#include <string>
#include <vector>

#include "core/arch/nb201_space.h"
#include "core/model/latency_model.h"

namespace maplex::core::testing {

// ln(ms) = level + flops_weight * log MACs (centred) + conv3_weight * #3x3 + pool_weight *
// #pool + a small arch-specific wiggle shared by all devices.
struct DeviceShape {
  std::string name;
  std::string hardware;
  double level, flops_weight, conv3_weight, pool_weight;
  DeviceCategory category = DeviceCategory::kDesktopGpu;
  double cores = 1000;
};

inline double SyntheticLogLatency(const DeviceShape& s, int32_t arch) {
  const Nb201Space& space = Nb201Space::Get();
  const Nb201Cell cell = space.CellAt(arch);
  int conv3 = 0, pool = 0;
  for (Nb201Op op : cell) {
    conv3 += op == Nb201Op::kNorConv3x3;
    pool += op == Nb201Op::kAvgPool3x3;
  }
  const double log_macs = std::log(static_cast<double>(space.Cost(arch).macs)) - 17.5;
  const double wiggle = 0.02 * std::sin(0.37 * arch);
  return s.level + s.flops_weight * log_macs + s.conv3_weight * conv3 + s.pool_weight * pool +
         wiggle;
}

// All 15,625 archs when `every` is 1; every `every`-th arch otherwise.
inline DeviceData SyntheticDevice(const DeviceShape& s, int every = 1) {
  DeviceData d;
  d.device = s.name;
  d.hardware = s.hardware.empty() ? s.name : s.hardware;
  d.descriptor.spec.category = s.category;
  d.descriptor.spec.compute_units = s.cores;
  for (int32_t a = 0; a < kNb201CellCount; a += every) {
    d.samples.push_back({a, std::exp(SyntheticLogLatency(s, a))});
  }
  return d;
}

// Four reference devices of two kinds (GPU-like: flat; CPU-like: FLOPs-bound).
inline std::vector<DeviceShape> ReferenceShapes() {
  return {
      {"gpu_a", "gpu_a", 1.0, 0.20, 0.05, 0.02, DeviceCategory::kDesktopGpu, 3000},
      {"gpu_b", "gpu_b", 0.8, 0.25, 0.04, 0.03, DeviceCategory::kDesktopGpu, 4000},
      {"cpu_a", "cpu_a", 2.0, 0.80, 0.10, 0.10, DeviceCategory::kDesktopCpu, 10},
      {"cpu_b", "cpu_b", 2.5, 0.70, 0.15, 0.05, DeviceCategory::kDesktopCpu, 18},
  };
}

}  // namespace maplex::core::testing

#endif  // MAPLEX_TESTS_CORE_SYNTHETIC_DEVICES_H_

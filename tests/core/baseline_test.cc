#include "core/model/baseline.h"

#include <cmath>

#include "core/arch/nb201_space.h"
#include "gtest/gtest.h"
#include "tests/core/synthetic_devices.h"

namespace maplex::core {
namespace {

using testing::ReferenceShapes;
using testing::SyntheticDevice;
using testing::SyntheticLogLatency;

ReferenceSet MakeReferences(std::vector<DeviceData>* storage) {
  for (const auto& s : ReferenceShapes()) storage->push_back(SyntheticDevice(s));
  std::vector<const DeviceData*> ptrs;
  for (const DeviceData& d : *storage) ptrs.push_back(&d);
  return *BuildReferenceSet(ptrs, kNb201CellCount);
}

TEST(BaselineTest, RecoversAnExactLogLinearRelation) {
  std::vector<DeviceData> storage;
  const ReferenceSet refs = MakeReferences(&storage);
  // Target: log y = 0.3 + 1.7 * log L(cpu_a), exactly, on 5 archs.
  const auto shape = ReferenceShapes()[2];
  DeviceData target;
  target.device = "target";
  for (int32_t a : {5, 900, 4000, 12000, 15000}) {
    target.samples.push_back({a, std::exp(0.3 + 1.7 * SyntheticLogLatency(shape, a))});
  }
  const BaselineFit fit = FitBaseline(refs, ToLogSamples(target));
  EXPECT_EQ(refs.devices[fit.reference], "cpu_a");
  EXPECT_NEAR(fit.alpha, 0.3, 1e-9);
  EXPECT_NEAR(fit.beta, 1.7, 1e-9);
  EXPECT_NEAR(fit.residual_rss, 0, 1e-12);
  const DeviceTable table = BaselineTable(refs, fit, target);
  for (int32_t a = 0; a < kNb201CellCount; a += 97) {
    EXPECT_NEAR(table.log_latency[a], 0.3 + 1.7 * SyntheticLogLatency(shape, a), 1e-9);
  }
  // Zero residual still gives a positive interval (prior pseudo-observation).
  EXPECT_GT(fit.log_half_width, 0);
}

TEST(BaselineTest, NoisierFitsWidenTheInterval) {
  std::vector<DeviceData> storage;
  const ReferenceSet refs = MakeReferences(&storage);
  const auto shape = ReferenceShapes()[0];
  LogSamples clean, noisy;
  const int32_t archs[] = {11, 222, 3333, 4444, 5555, 6666};
  for (int i = 0; i < 6; ++i) {
    const double l = SyntheticLogLatency(shape, archs[i]);
    clean.archs.push_back(archs[i]);
    clean.log_latency.push_back(l);
    noisy.archs.push_back(archs[i]);
    noisy.log_latency.push_back(l + (i % 2 ? 0.2 : -0.2));
  }
  EXPECT_LT(FitBaseline(refs, clean).log_half_width, FitBaseline(refs, noisy).log_half_width);
}

TEST(BaselineTest, StudentQuantilesFallTowardsNormal) {
  EXPECT_NEAR(StudentT95(1), 6.314, 1e-9);
  EXPECT_NEAR(StudentT95(10), 1.812, 1e-9);
  EXPECT_GT(StudentT95(2.5), StudentT95(3));
  EXPECT_NEAR(StudentT95(1e6), 1.6449, 1e-4);
}

}  // namespace
}  // namespace maplex::core

#include "core/hardware/descriptor_features.h"

#include <cmath>

#include "gtest/gtest.h"

namespace maplex::core {
namespace {

HardwareDescriptor Cpu(double cores, std::optional<double> clock) {
  HardwareDescriptor d;
  d.spec.category = DeviceCategory::kDesktopCpu;
  d.spec.compute_units = cores;
  d.spec.base_clock_ghz = clock;
  return d;
}

TEST(DescriptorFeaturesTest, StandardisesOverTrainingAndFlagsMissing) {
  const DescriptorEncoder enc = DescriptorEncoder::Fit({Cpu(4, 2.0), Cpu(16, 3.0)});
  const EncodedDescriptor e = enc.Encode(Cpu(8, std::nullopt));
  const auto& names = SpecFieldNames();
  const size_t cores = std::find(names.begin(), names.end(), "log_compute_units") - names.begin();
  const size_t clock = std::find(names.begin(), names.end(), "base_clock_ghz") - names.begin();
  // log 8 is the mean of log 4 and log 16: standardised to 0, and known.
  EXPECT_NEAR(e.spec[cores], 0, 1e-12);
  EXPECT_TRUE(e.spec_known[cores]);
  // Missing clock: imputed with the mean (0) and flagged unknown.
  EXPECT_EQ(e.spec[clock], 0);
  EXPECT_FALSE(e.spec_known[clock]);
  EXPECT_TRUE(e.has_spec());
  EXPECT_FALSE(e.has_counters());
  EXPECT_NEAR(enc.Encode(Cpu(16, 3.0)).spec[cores], 1, 1e-12);
}

TEST(DescriptorFeaturesTest, SimilarityPrefersCloserDevices) {
  const DescriptorEncoder enc = DescriptorEncoder::Fit({Cpu(4, 2.0), Cpu(16, 3.0)});
  const EncodedDescriptor a = enc.Encode(Cpu(4, 2.0));
  EXPECT_DOUBLE_EQ(enc.Similarity(a, a), 1);
  EXPECT_GT(enc.Similarity(a, enc.Encode(Cpu(5, 2.1))),
            enc.Similarity(a, enc.Encode(Cpu(16, 3.0))));
  // Fields one side does not know are left out, not counted as differences.
  EXPECT_DOUBLE_EQ(enc.Similarity(a, enc.Encode(Cpu(4, std::nullopt))), 1);
}

TEST(DescriptorFeaturesTest, CountersArePerInstructionAndLogScaled) {
  HardwareDescriptor d;
  d.reference_workload_seconds = 2;
  d.counters = {{"instructions", true, 4e9, ""},
                {"cache-misses", true, 4e6, ""},
                {"LLC-loads", false, 0, "not exposed"}};
  const std::vector<double> raw = RawCounterVector(d);
  const auto& names = KnownCounterNames();
  auto at = [&](const char* n) {
    return raw[std::find(names.begin(), names.end(), n) - names.begin()];
  };
  EXPECT_NEAR(at("instructions"), std::log(2e9), 1e-9);    // per second
  EXPECT_NEAR(at("cache-misses"), std::log1p(1.0), 1e-9);  // 1 per 1000 instructions
  EXPECT_TRUE(std::isnan(at("LLC-loads")));                // unavailable, never made up
  EXPECT_TRUE(std::isnan(at("cpu-cycles")));
}

}  // namespace
}  // namespace maplex::core

#include "core/model/maple_model.h"

#include <cmath>
#include <optional>

#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/synthetic_devices.h"

namespace maplex::core {
namespace {

using testing::DeviceShape;
using testing::SyntheticDevice;
using testing::SyntheticLogLatency;

// Reference devices: two GPU-like and two CPU-like shapes (tests/core/synthetic_devices.h),
// whose profiles differ in how much FLOPs, 3x3 convolutions and pooling cost.
struct Fixture {
  std::vector<DeviceData> storage;
  ReferenceSet refs;
  std::unique_ptr<MapleContext> context;

  explicit Fixture(MapleConfig config = MapleConfig()) {
    for (const auto& s : testing::ReferenceShapes()) storage.push_back(SyntheticDevice(s));
    std::vector<const DeviceData*> ptrs;
    for (const DeviceData& d : storage) ptrs.push_back(&d);
    refs = *BuildReferenceSet(ptrs, kNb201CellCount);
    context = *MapleContext::Create(refs, config);
  }
};

DeviceData Target(const DeviceShape& shape, const std::vector<int32_t>& archs) {
  DeviceData d;
  d.device = shape.name;
  d.hardware = shape.name;
  d.descriptor.spec.category = shape.category;
  d.descriptor.spec.compute_units = shape.cores;
  for (int32_t a : archs) d.samples.push_back({a, std::exp(SyntheticLogLatency(shape, a))});
  return d;
}

// Mean |predicted - true| log latency over the space; `log_truth(a)` is the truth.
template <typename LogTruth>
double MeanAbsLogError(const DeviceTable& t, const LogTruth& log_truth) {
  double sum = 0;
  for (int32_t a = 0; a < kNb201CellCount; ++a) sum += std::abs(t.log_latency[a] - log_truth(a));
  return sum / kNb201CellCount;
}

double MeanAbsLogError(const DeviceTable& t, const DeviceShape& truth) {
  return MeanAbsLogError(t, [&](int32_t a) { return SyntheticLogLatency(truth, a); });
}

// A CPU close to cpu_b (index 3).
const DeviceShape kCpuLike{"new_cpu", "new_cpu", 2.4, 0.72, 0.15, 0.05, DeviceCategory::kDesktopCpu,
                           16};

TEST(MapleModelTest, ImportanceConcentratesOnTheSimilarDevice) {
  Fixture f;
  const DeviceData target = Target(kCpuLike, {10, 500, 2500, 7000, 12000});
  MapleFitInfo info;
  f.context->Fit(target, Method::kMapleWeights, &info);
  ASSERT_EQ(info.weights.size(), 4u);
  // cpu_b (cores 18, same slopes) must dominate; the GPUs must be negligible.
  EXPECT_GT(info.weights[3], 0.5);
  EXPECT_LT(info.weights[0] + info.weights[1], 0.05);
  // Specs alone (no samples) already favour the CPUs.
  DeviceData specs_only = target;
  specs_only.samples.clear();
  const std::vector<double> w = f.context->ImportanceWeights(
      DescriptorEncoder::Fit(f.refs.descriptors).Encode(specs_only.descriptor), LogSamples());
  EXPECT_GT(w[2] + w[3], w[0] + w[1]);
  // Plain MAPLE weighs every reference alike.
  f.context->Fit(target, Method::kMaple, &info);
  for (double v : info.weights) EXPECT_DOUBLE_EQ(v, 0.25);
}

TEST(MapleModelTest, WeightsImproveATargetLikeOneReference) {
  Fixture f;
  const DeviceData target = Target(kCpuLike, {10, 500, 2500});
  const double plain = MeanAbsLogError(f.context->Fit(target, Method::kMaple), kCpuLike);
  const double weighted = MeanAbsLogError(f.context->Fit(target, Method::kMapleWeights), kCpuLike);
  EXPECT_LT(weighted, plain);
}

TEST(MapleModelTest, VirtualExamplesImproveASparseTarget) {
  Fixture f;
  const DeviceData target = Target(kCpuLike, {10, 7000, 12000});
  MapleFitInfo info;
  const double plain = MeanAbsLogError(f.context->Fit(target, Method::kMaple), kCpuLike);
  const double with_ve =
      MeanAbsLogError(f.context->Fit(target, Method::kMapleVirtualExamples, &info), kCpuLike);
  EXPECT_EQ(info.virtual_examples, 3 * f.context->config().virtual_per_sample);
  EXPECT_LT(with_ve, plain);
}

TEST(MapleModelTest, MoreSamplesNarrowTheIntervalAndFitBetter) {
  Fixture f;
  std::vector<int32_t> few = {10, 500, 2500}, many;
  for (int32_t a = 3; a < kNb201CellCount; a += 400) many.push_back(a);
  const DeviceTable a = f.context->Fit(Target(kCpuLike, few), Method::kMapleX);
  const DeviceTable b = f.context->Fit(Target(kCpuLike, many), Method::kMapleX);
  EXPECT_LE(MeanAbsLogError(b, kCpuLike), MeanAbsLogError(a, kCpuLike) + 1e-9);
  EXPECT_LT(b.log_half_width[123], a.log_half_width[123]);
}

// A target that pays a fixed cost per executed op (non-"none" edge), which none of the
// references does: the primitive-count term, its prior sd chosen by the evidence of the
// samples, must take it up; a target without that cost must not be hurt by it.
TEST(MapleModelTest, PrimitiveCountTermLearnsAPerOpOverhead) {
  MapleConfig off;
  off.primitive_sd = 0;
  Fixture with, without(off);
  const double per_op = 0.15;
  auto overhead_truth = [&](int32_t a) {
    const Nb201Cell cell = Nb201Space::Get().CellAt(a);
    int ops = 0;
    for (Nb201Op op : cell) ops += op != Nb201Op::kNone;
    return SyntheticLogLatency(kCpuLike, a) + per_op * ops;
  };
  DeviceData target = Target(kCpuLike, {});
  std::vector<int32_t> archs;
  for (int32_t a = 7; a < kNb201CellCount; a += 1500) archs.push_back(a);
  for (int32_t a : archs) target.samples.push_back({a, std::exp(overhead_truth(a))});
  auto error = [&](const DeviceTable& t) { return MeanAbsLogError(t, overhead_truth); };
  MapleFitInfo info;
  const double learnt = error(with.context->Fit(target, Method::kMapleX, &info));
  const double plain = error(without.context->Fit(target, Method::kMapleX));
  EXPECT_GT(info.primitive_sd, 0);
  EXPECT_LT(learnt, 0.7 * plain);

  const DeviceData clean = Target(kCpuLike, archs);
  const double clean_with = MeanAbsLogError(with.context->Fit(clean, Method::kMapleX), kCpuLike);
  const double clean_without =
      MeanAbsLogError(without.context->Fit(clean, Method::kMapleX), kCpuLike);
  EXPECT_LT(clean_with, clean_without + 0.01);
  // Too few samples cannot tell the term from the noise: it stays off.
  target.samples.resize(2);
  with.context->Fit(target, Method::kMapleX, &info);
  EXPECT_EQ(info.primitive_sd, 0);
}

// A runtime that executes a cell's ops one after another (oneDNN at batch 1 on a CPU): its
// latency is a fixed cost plus a cost per op in ms, which no affine copy of the references
// reproduces. With 10 samples the op-cost estimate wins the leave-one-out comparison and
// takes over; below op_cost_min_samples, or for a target that is a copy of a reference, it
// stays out of the way.
TEST(MapleModelTest, OpCostEstimateFitsASequentialRuntime) {
  MapleConfig off;
  off.op_cost_min_samples = 0;
  Fixture with, without(off);
  const double cost_ms[kNb201OpCount] = {0.0, 0.02, 0.15, 0.40, 0.12};
  auto sequential_log_ms = [&](int32_t a) {
    double ms = 0.05;
    for (Nb201Op op : Nb201Space::Get().CellAt(a)) ms += cost_ms[static_cast<int>(op)];
    return std::log(ms);
  };
  std::vector<int32_t> archs;
  for (int32_t a = 7; a < kNb201CellCount; a += 1500) archs.push_back(a);
  ASSERT_EQ(archs.size(), 11u);
  DeviceData target = Target(kCpuLike, {});
  for (int32_t a : archs) target.samples.push_back({a, std::exp(sequential_log_ms(a))});
  auto error = [&](const DeviceTable& t) { return MeanAbsLogError(t, sequential_log_ms); };
  MapleFitInfo info;
  const double blended = error(with.context->Fit(target, Method::kMapleX, &info));
  const double plain = error(without.context->Fit(target, Method::kMapleX));
  EXPECT_GT(info.op_cost_share, 0.9);
  EXPECT_LT(blended, 0.3 * plain);
  // The other methods are the MAPLE ablation: unchanged.
  with.context->Fit(target, Method::kMapleWeights, &info);
  EXPECT_EQ(info.op_cost_share, 0);

  // A target that is an affine copy of a reference's profile: the posterior predicts its
  // samples better out of sample, and the blend costs it little.
  const DeviceData copy = Target(kCpuLike, archs);
  const double copy_with =
      MeanAbsLogError(with.context->Fit(copy, Method::kMapleX, &info), kCpuLike);
  const double copy_without =
      MeanAbsLogError(without.context->Fit(copy, Method::kMapleX), kCpuLike);
  EXPECT_LT(info.op_cost_share, 0.5);
  EXPECT_LT(copy_with, copy_without + 0.01);

  // Six samples: the op-cost fit (five coefficients) is not determined out of sample.
  target.samples.resize(6);
  with.context->Fit(target, Method::kMapleX, &info);
  EXPECT_EQ(info.op_cost_share, 0);
}

// A better-measured device on the same hardware paying the same cost per primitive: its
// estimate centres a sparse target's term when the target's own samples cannot pin it down
// (all with six primitives here), and does not hurt a target without that cost.
TEST(MapleModelTest, SameHardwareDeviceInformsThePrimitiveCost) {
  Fixture f;
  const double per_op = 0.15;
  auto overhead_truth = [&](int32_t a) {
    return SyntheticLogLatency(kCpuLike, a) + per_op * Nb201Space::Get().PrimitiveCount(a);
  };
  DeviceData sibling = Target(kCpuLike, {});
  for (int32_t a = 3; a < kNb201CellCount; a += 75) {
    sibling.samples.push_back({a, std::exp(overhead_truth(a))});
  }
  const std::optional<PrimitiveCost> cost =
      f.context->EstimatePrimitiveCost(sibling, Method::kMapleX);
  ASSERT_TRUE(cost.has_value());
  EXPECT_NEAR(cost->mean, per_op, 0.03);
  EXPECT_GT(cost->sd, 0);

  DeviceData target = Target(kCpuLike, {});
  for (int32_t a = 11; a < kNb201CellCount && target.samples.size() < 6; a += 997) {
    if (Nb201Space::Get().PrimitiveCount(a) == 6) {
      target.samples.push_back({a, std::exp(overhead_truth(a))});
    }
  }
  ASSERT_EQ(target.samples.size(), 6u);
  auto error = [&](const DeviceTable& t) {
    double sum = 0;
    for (int32_t a = 0; a < kNb201CellCount; ++a) {
      sum += std::abs(t.log_latency[a] - overhead_truth(a));
    }
    return sum / kNb201CellCount;
  };
  MapleFitInfo info;
  const double informed = error(f.context->Fit(target, Method::kMapleX, &info, &*cost));
  EXPECT_EQ(info.primitive_mean, cost->mean);
  const double alone = error(f.context->Fit(target, Method::kMapleX));
  EXPECT_LT(informed, 0.7 * alone);

  std::vector<int32_t> archs;
  for (int32_t a = 7; a < kNb201CellCount; a += 1500) archs.push_back(a);
  const DeviceData clean = Target(kCpuLike, archs);
  EXPECT_LT(MeanAbsLogError(f.context->Fit(clean, Method::kMapleX, nullptr, &*cost), kCpuLike),
            MeanAbsLogError(f.context->Fit(clean, Method::kMapleX), kCpuLike) + 0.01);
  // Too few samples for an estimate.
  sibling.samples.resize(2);
  EXPECT_FALSE(f.context->EstimatePrimitiveCost(sibling, Method::kMapleX).has_value());
}

TEST(MapleModelTest, FitIsDeterministic) {
  Fixture f1, f2;
  const DeviceData target = Target(kCpuLike, {10, 500, 2500, 7000});
  const DeviceTable a = f1.context->Fit(target, Method::kMapleX);
  const DeviceTable b = f2.context->Fit(target, Method::kMapleX);
  EXPECT_EQ(a.log_latency, b.log_latency);
  EXPECT_EQ(a.log_half_width, b.log_half_width);
}

TEST(MapleModelTest, ReportsWhichDescriptorPartsItUsed) {
  Fixture f;
  DeviceData target = Target(kCpuLike, {10, 500, 2500});
  EXPECT_TRUE(f.context->Fit(target, Method::kMapleX).use.spec);
  EXPECT_FALSE(f.context->Fit(target, Method::kMaple).use.spec);  // MAPLE ignores specs
  EXPECT_TRUE(f.context->Fit(target, Method::kMaple).use.measured_latencies);
  target.descriptor.counters.push_back({"instructions", true, 1e9, ""});
  target.descriptor.counters.push_back({"cache-misses", true, 1e6, ""});
  target.descriptor.reference_workload_seconds = 0.5;
  // No reference has counters, so there is nothing to compare them with.
  EXPECT_FALSE(f.context->Fit(target, Method::kMapleX).use.counters);
  target.samples.clear();
  const DeviceTable none = f.context->Fit(target, Method::kMapleX);
  EXPECT_FALSE(none.use.measured_latencies);
  for (double v : none.log_latency) ASSERT_TRUE(std::isfinite(v));
}

TEST(MapleModelTest, CountersEnterTheSimilarityWhenBothSidesHaveThem) {
  // References with counters: the two CPUs miss the cache far more than the GPUs' hosts.
  std::vector<DeviceData> storage;
  const double misses[] = {1e5, 1e5, 5e7, 6e7};
  for (int i = 0; i < 4; ++i) {
    storage.push_back(SyntheticDevice(testing::ReferenceShapes()[i]));
    HardwareDescriptor& d = storage.back().descriptor;
    d.spec = HardwareSpec();  // no specs: counters only
    d.reference_workload_seconds = 1;
    d.counters = {{"instructions", true, 1e9, ""}, {"cache-misses", true, misses[i], ""}};
  }
  std::vector<const DeviceData*> ptrs;
  for (const DeviceData& d : storage) ptrs.push_back(&d);
  const ReferenceSet refs = *BuildReferenceSet(ptrs, kNb201CellCount);
  auto context = *MapleContext::Create(refs, MapleConfig());
  DeviceData target;
  target.device = "t";
  target.descriptor.reference_workload_seconds = 1;
  target.descriptor.counters = {{"instructions", true, 1e9, ""}, {"cache-misses", true, 5.5e7, ""}};
  MapleFitInfo info;
  const DeviceTable t = context->Fit(target, Method::kMapleWeights, &info);
  EXPECT_TRUE(t.use.counters);
  EXPECT_FALSE(t.use.measured_latencies);
  // The CPUs (similar miss rate) outweigh the GPUs.
  EXPECT_GT(std::min(info.weights[2], info.weights[3]),
            1.5 * std::max(info.weights[0], info.weights[1]));
}

TEST(MapleModelTest, ConfigOverridesParseAndReject) {
  MapleConfig c;
  ASSERT_TRUE(ApplyMapleConfigOverrides("rank=3,virtual_weight=0.5,analytic_features=1", &c).ok());
  EXPECT_EQ(c.rank, 3);
  EXPECT_EQ(c.virtual_weight, 0.5);
  EXPECT_TRUE(c.analytic_features);
  EXPECT_THAT(std::string(ApplyMapleConfigOverrides("colour=3", &c).message()),
              ::testing::HasSubstr("colour"));
  EXPECT_FALSE(ApplyMapleConfigOverrides("rank=x", &c).ok());
}

TEST(MapleModelTest, NeedsTwoReferences) {
  std::vector<DeviceData> one = {SyntheticDevice(testing::ReferenceShapes()[0])};
  const ReferenceSet refs = *BuildReferenceSet({&one[0]}, kNb201CellCount);
  EXPECT_EQ(MapleContext::Create(refs, MapleConfig()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace maplex::core

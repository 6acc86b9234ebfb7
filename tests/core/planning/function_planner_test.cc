// The function-model planner (core/planning/function_planner.h) on the bundled FBNet data:
// every fifth architecture is held out from every device; a target's hardware is left out of
// the references, and its 10 samples come from the planner or at random.
#include "core/planning/function_planner.h"

#include <algorithm>
#include <set>
#include <vector>

#include "client/data_files.h"
#include "core/arch/fbnet_space.h"
#include "core/dataset/latency_table.h"
#include "core/eval/metrics.h"
#include "core/model/function_trainer.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

const SpaceLatencyTable& Table() {
  static const SpaceLatencyTable* table = [] {
    absl::StatusOr<SpaceLatencyTable> t =
        client::LoadSpaceLatencyData("data/fbnet_latency.csv.gz", "data/fbnet_devices.csv");
    EXPECT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->space, &FbnetSpace::Get());
    return new SpaceLatencyTable(*std::move(t));
  }();
  return *table;
}

bool HeldOut(int row) { return row % 5 == 4; }

std::vector<Architecture> TrainingArchs() {
  std::vector<Architecture> out;
  for (size_t r = 0; r < Table().archs.size(); ++r) {
    if (!HeldOut(static_cast<int>(r))) out.push_back(Table().archs[r]);
  }
  return out;
}

// Every device of other hardware than `target` as a reference on the training rows.
std::vector<SpaceDeviceData> References(const std::string& target_hardware) {
  std::vector<SpaceDeviceData> out;
  for (const auto& c : Table().devices) {
    if (c.hardware == target_hardware) continue;
    SpaceDeviceData d{c.device, c.hardware, c.descriptor, {}};
    for (size_t r = 0; r < Table().archs.size(); ++r) {
      if (!HeldOut(static_cast<int>(r))) d.samples.push_back({Table().archs[r], c.latency_ms[r]});
    }
    out.push_back(std::move(d));
  }
  return out;
}

const SpaceLatencyTable::Column& Column(const std::string& device) {
  for (const auto& c : Table().devices) {
    if (c.device == device) return c;
  }
  ADD_FAILURE() << device;
  return Table().devices.front();
}

FunctionPlanner Planner(const std::vector<SpaceDeviceData>& refs) {
  absl::StatusOr<TrainedFunctionModel> t = TrainFunctionModel(FbnetSpace::Get(), refs, {});
  EXPECT_TRUE(t.ok()) << t.status();
  absl::StatusOr<FunctionPlanner> planner = FunctionPlanner::Build(*t, TrainingArchs());
  EXPECT_TRUE(planner.ok()) << planner.status();
  return *std::move(planner);
}

TEST(FunctionPlanner, NeverMeasuredNoDuplicatesDeterministic) {
  const FunctionPlanner planner = Planner(References("Intel Xeon Silver 4210R"));
  EXPECT_EQ(planner.reference_count(), 18);
  const FunctionPlan first = planner.Next("board", {}, 40, 1);
  ASSERT_EQ(first.archs.size(), 40u);
  EXPECT_EQ(first.strategy.rfind("d-optimal", 0), 0u) << first.strategy;
  // The device measured the first 20 picks: they are never proposed again.
  const std::vector<Architecture> measured(first.archs.begin(), first.archs.begin() + 20);
  const FunctionPlan next = planner.Next("board", measured, 40, 1);
  ASSERT_EQ(next.archs.size(), 40u);
  std::set<Architecture> seen;
  for (const Architecture& a : next.archs) {
    EXPECT_EQ(std::count(measured.begin(), measured.end(), a), 0) << a.ToString();
    EXPECT_TRUE(seen.insert(a).second) << "repeated " << a.ToString();
    EXPECT_TRUE(FbnetSpace::Get().IsOutputConnected(a));
  }
  // Deterministic in (device, seed), different across either.
  EXPECT_EQ(planner.Next("board", measured, 40, 1).archs, next.archs);
  EXPECT_NE(planner.Next("board", measured, 40, 2).archs, next.archs);
  EXPECT_NE(planner.Next("other", measured, 40, 1).archs, next.archs);
  // Given candidates: only those, minus the measured ones.
  const std::vector<Architecture> train = TrainingArchs();
  const std::vector<Architecture> some(train.begin(), train.begin() + 30);
  const FunctionPlan given = planner.Next({some[0], some[1]}, 50, some);
  EXPECT_EQ(given.archs.size(), 28u);
  for (const Architecture& a : given.archs) {
    EXPECT_NE(std::find(some.begin() + 2, some.end(), a), some.end());
  }
}

TEST(FunctionPlanner, WithoutReferencesSpreadsOverCompute) {
  absl::StatusOr<FunctionPlanner> planner = FunctionPlanner::Build(FbnetSpace::Get(), {}, {});
  ASSERT_TRUE(planner.ok());
  const std::vector<Architecture> candidates = FbnetSpace::Get().Sample(500, 3);
  const FunctionPlan plan = planner->Next({}, 5, candidates);
  EXPECT_EQ(plan.strategy.rfind("diverse-compute: no reference device in fbnet", 0), 0u)
      << plan.strategy;
  ASSERT_EQ(plan.archs.size(), 5u);
  int64_t lo = INT64_MAX, hi = 0;
  for (const Architecture& a : candidates) {
    lo = std::min(lo, FbnetSpace::Get().Cost(a).macs);
    hi = std::max(hi, FbnetSpace::Get().Cost(a).macs);
  }
  // The cheapest and the most expensive candidate, and three between, in order.
  EXPECT_EQ(FbnetSpace::Get().Cost(plan.archs.front()).macs, lo);
  EXPECT_EQ(FbnetSpace::Get().Cost(plan.archs.back()).macs, hi);
  for (size_t i = 1; i < plan.archs.size(); ++i) {
    EXPECT_LT(FbnetSpace::Get().Cost(plan.archs[i - 1]).macs,
              FbnetSpace::Get().Cost(plan.archs[i]).macs);
  }
  EXPECT_EQ(planner->Next("board", {}, 7, 1).archs.size(), 7u);
}

// Held-out accuracy (rho + +-10 %) of a maplex fit from `samples` of `device`.
double HeldOutScore(FunctionModelTrainer& trainer, std::vector<SpaceDeviceData> fleet,
                    const std::string& device, const std::vector<Architecture>& samples) {
  const auto& c = Column(device);
  SpaceDeviceData d{c.device, c.hardware, c.descriptor, {}};
  for (const Architecture& a : samples) {
    const auto it = std::find(Table().archs.begin(), Table().archs.end(), a);
    d.samples.push_back({a, c.latency_ms[it - Table().archs.begin()]});
  }
  fleet.push_back(std::move(d));
  absl::StatusOr<TrainedFunctionModel> t = trainer.Train(fleet);
  EXPECT_TRUE(t.ok()) << t.status();
  absl::StatusOr<FunctionModel> model = FunctionModel::Create(t->params);
  std::vector<Architecture> archs;
  std::vector<double> measured;
  for (size_t r = 0; r < Table().archs.size(); ++r) {
    if (HeldOut(static_cast<int>(r))) {
      archs.push_back(Table().archs[r]);
      measured.push_back(c.latency_ms[r]);
    }
  }
  std::vector<LatencyPrediction> pred(archs.size());
  EXPECT_TRUE(model->Predict(device, archs, absl::MakeSpan(pred)).ok());
  const AccuracyMetrics m = ComputeAccuracy(pred, measured);
  return m.spearman + m.acc10;
}

TEST(FunctionPlanner, TenPlannedBeatTenRandom) {
  // Per target: the planner's 10 (among the training rows) against 5 random draws of 10.
  const std::vector<Architecture> train = TrainingArchs();
  double planned_sum = 0, random_sum = 0, planned_logdet = 0, random_logdet = 0;
  int targets = 0;
  for (const char* device : {"silver_4210r", "pixel3", "samsung_a50", "titanxp_32"}) {
    const std::vector<SpaceDeviceData> refs = References(Column(device).hardware);
    const FunctionPlanner planner = Planner(refs);
    FunctionModelTrainer trainer(FbnetSpace::Get(), {});
    const std::vector<Architecture> planned = planner.Next({}, 10, train).archs;
    ASSERT_EQ(planned.size(), 10u);
    planned_sum += HeldOutScore(trainer, refs, device, planned);
    planned_logdet += planner.PosteriorLogDet(planned);
    for (uint64_t seed = 0; seed < 5; ++seed) {
      std::vector<Architecture> random;
      uint64_t state = seed + 100;
      while (random.size() < 10) {
        const Architecture& a = train[SplitMix64(state) % train.size()];
        if (std::find(random.begin(), random.end(), a) == random.end()) random.push_back(a);
      }
      random_sum += HeldOutScore(trainer, refs, device, random) / 5;
      random_logdet += planner.PosteriorLogDet(random) / 5;
    }
    ++targets;
  }
  planned_sum /= targets;
  random_sum /= targets;
  // Measured: planned 1.915, random 1.878 (mean of rho + +-10 % over the 4 targets).
  EXPECT_GT(planned_sum, random_sum + 0.015) << planned_sum << " vs " << random_sum;
  EXPECT_GT(planned_logdet, random_logdet) << planned_logdet << " vs " << random_logdet;
}

}  // namespace
}  // namespace maplex::core

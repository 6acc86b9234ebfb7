#include "core/planning/measurement_planner.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/arch/nb201_space.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

// Synthetic devices whose log-latency is a mix of two architecture traits (compute and
// the count of pooling edges), weighted differently per device.
std::vector<DeviceData> TwoFactorDevices() {
  const Nb201Space& space = Nb201Space::Get();
  std::vector<DeviceData> devices;
  const double weights[][2] = {{1.0, 0.1}, {0.8, 0.5}, {0.3, 1.0}, {1.2, -0.2}};
  for (int d = 0; d < 4; ++d) {
    DeviceData& dev = devices.emplace_back();
    dev.device = "dev" + std::to_string(d);
    for (int a = 0; a < space.size(); ++a) {
      double compute = std::log1p(static_cast<double>(space.Cost(a).macs) / 1e6);
      double pools = 0;
      Nb201Cell cell = space.CellAt(a);
      for (Nb201Op op : cell) pools += op == Nb201Op::kAvgPool3x3;
      dev.samples.push_back({a, std::exp(weights[d][0] * compute + weights[d][1] * pools)});
    }
  }
  return devices;
}

TEST(MeasurementPlannerTest, ProposesDistinctConnectedUnmeasuredCells) {
  auto planner = MeasurementPlanner::Build(TwoFactorDevices(), Nb201Space::Get());
  ASSERT_TRUE(planner.ok()) << planner.status();
  std::vector<int32_t> measured = {0, 1, 2};
  std::vector<int32_t> next = planner->Next(measured, 20);
  ASSERT_EQ(next.size(), 20u);
  std::set<int32_t> unique(next.begin(), next.end());
  EXPECT_EQ(unique.size(), 20u);
  for (int32_t a : next) {
    EXPECT_TRUE(Nb201Space::Get().IsOutputConnected(a)) << a;
    EXPECT_FALSE(unique.count(0) || unique.count(1) || unique.count(2));
  }
  // Deterministic.
  EXPECT_EQ(planner->Next(measured, 20), next);
}

TEST(MeasurementPlannerTest, PicksSpreadOverCompute) {
  auto devices = TwoFactorDevices();
  auto planner = MeasurementPlanner::Build(devices, Nb201Space::Get(), 2);
  ASSERT_TRUE(planner.ok());
  std::vector<int32_t> planned = planner->Next({}, 6);
  std::set<int64_t> distinct_macs;
  for (int32_t a : planned) distinct_macs.insert(Nb201Space::Get().Cost(a).macs);
  // D-optimal picks spread over compute rather than bunching at one level.
  EXPECT_GE(distinct_macs.size(), 3u);
}

TEST(MeasurementPlannerTest, PicksSpreadOverPrimitiveCounts) {
  // Devices that differ only in their cost per 3x3 convolution: the factors alone would
  // leave the primitive count to chance, but the model also fits a cost per primitive.
  const Nb201Space& space = Nb201Space::Get();
  std::vector<DeviceData> devices;
  for (double w : {0.2, 0.5, 0.9}) {
    DeviceData& dev = devices.emplace_back();
    dev.device = "conv" + std::to_string(w);
    for (int a = 0; a < space.size(); ++a) {
      double convs = 0;
      for (Nb201Op op : space.CellAt(a)) convs += op == Nb201Op::kNorConv3x3;
      dev.samples.push_back({a, std::exp(w * convs)});
    }
  }
  auto planner = MeasurementPlanner::Build(devices, space, 1);
  ASSERT_TRUE(planner.ok());
  EXPECT_EQ(planner->factors(), 1);
  // The model fits the primitive term from the 5th sample on (MapleConfig); so does the
  // design: D-optimal for a linear term, it then takes the other end of the range.
  const std::vector<int32_t> picks = planner->Next({}, 5);
  ASSERT_EQ(picks.size(), 5u);
  std::set<int> counts;
  for (int i = 0; i < 4; ++i) counts.insert(space.PrimitiveCount(picks[i]));
  EXPECT_GE(*counts.begin(), 3);
  EXPECT_LE(space.PrimitiveCount(picks[4]), 2);
  // With four measured, the next pick is the primitive one.
  const std::vector<int32_t> first4(picks.begin(), picks.begin() + 4);
  EXPECT_EQ(planner->Next(first4, 1), std::vector<int32_t>{picks[4]});
}

TEST(MeasurementPlannerTest, ChoosesOnlyAmongCandidates) {
  auto planner = MeasurementPlanner::Build(TwoFactorDevices(), Nb201Space::Get());
  ASSERT_TRUE(planner.ok());
  std::vector<int32_t> candidates;
  for (int32_t a = 100; a < 400; a += 3) candidates.push_back(a);
  candidates.push_back(-1);      // outside the space: ignored
  candidates.push_back(100000);  // likewise
  const std::vector<int32_t> next = planner->Next({103}, 8, candidates);
  ASSERT_EQ(next.size(), 8u);
  for (int32_t a : next) {
    EXPECT_NE(std::find(candidates.begin(), candidates.end(), a), candidates.end()) << a;
    EXPECT_NE(a, 103);
    EXPECT_TRUE(Nb201Space::Get().IsOutputConnected(a)) << a;
  }
}

TEST(MeasurementPlannerTest, NeedsACompleteDevice) {
  std::vector<DeviceData> partial(1);
  partial[0].device = "p";
  partial[0].samples = {{1, 2.0}};
  EXPECT_EQ(MeasurementPlanner::Build(partial, Nb201Space::Get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DiverseArchitecturesTest, SpreadsOverComputeAndSkipsDisconnectedCells) {
  const Nb201Space& space = Nb201Space::Get();
  std::vector<int32_t> d = DiverseArchitectures(space, 10);
  ASSERT_EQ(d.size(), 10u);
  for (size_t i = 1; i < d.size(); ++i) {
    EXPECT_LE(space.Cost(d[i - 1]).macs, space.Cost(d[i]).macs);
    EXPECT_TRUE(space.IsOutputConnected(d[i]));
  }
  EXPECT_LT(space.Cost(d.front()).macs, space.Cost(d.back()).macs);
  EXPECT_EQ(DiverseArchitectures(space, 10), d);
}

}  // namespace
}  // namespace maplex::core

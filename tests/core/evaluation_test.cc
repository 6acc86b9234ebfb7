// Tests core/eval/evaluation.cc (maplex-eval, maplex report) on a tiny synthetic table.
#include "core/eval/evaluation.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/core/synthetic_devices.h"

namespace maplex::core {
namespace {

using ::testing::HasSubstr;

std::vector<core::DeviceData> Devices() {
  std::vector<core::DeviceData> devices;
  for (auto s : core::testing::ReferenceShapes()) {
    devices.push_back(core::testing::SyntheticDevice(s));
  }
  // A second configuration of gpu_a's hardware: leaves with it.
  auto twin = core::testing::ReferenceShapes()[0];
  twin.name = "gpu_a_32";
  twin.level += 1;
  devices.push_back(core::testing::SyntheticDevice(twin));
  return devices;
}

TEST(EvaluationTest, LeaveOneHardwareOutScoresEveryDeviceAndMethod) {
  EvaluationOptions o;
  o.ks = {3, 10};
  o.seeds = 2;
  o.methods = {core::Method::kBaseline};
  absl::StatusOr<EvaluationReport> r = RunEvaluation(Devices(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results.size(), 5u * 2u);  // devices x ks
  EXPECT_EQ(r->means.size(), 2u);
  for (const DeviceResult& d : r->results) {
    EXPECT_EQ(d.seed_count, 2);
    // Connected cells only, minus the k drawn ones.
    EXPECT_EQ(d.connected.count, 15625 - 341 - d.k);
    EXPECT_EQ(d.disconnected.count, 341);
    EXPECT_GT(d.connected.spearman, 0.5) << d.device;
  }
  // The shape docs/accuracy/results.json has: results and means, keys in this order,
  // figures with 6 decimals.
  const nlohmann::ordered_json json = nlohmann::ordered_json::parse(ReportJson(*r));
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json.begin().key(), "results");
  ASSERT_EQ(json["results"].size(), r->results.size());
  ASSERT_EQ(json["means"].size(), r->means.size());
  const nlohmann::ordered_json& first = json["results"][0];
  std::vector<std::string> keys;
  for (auto it = first.begin(); it != first.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"method", "k", "device", "seed_count", "spearman", "acc5",
                                      "acc10", "mape", "coverage90", "disconnected"}));
  EXPECT_EQ(first["method"], "baseline");
  EXPECT_EQ(first["device"], r->results[0].device);
  EXPECT_EQ(first["seed_count"], 2);
  EXPECT_NEAR(first["spearman"].get<double>(), r->results[0].connected.spearman, 5e-7);
  EXPECT_EQ(first["spearman"].dump(), absl::StrFormat("%.6f", r->results[0].connected.spearman)
                                          .substr(0, first["spearman"].dump().size()));
  EXPECT_NEAR(first["disconnected"]["mape"].get<double>(), r->results[0].disconnected.mape, 5e-7);
  EXPECT_EQ(json["means"][1]["k"], 10);
  EXPECT_THAT(ReportMarkdown(*r, "cmd"), HasSubstr("| baseline | 10 |"));
  EXPECT_THAT(AccuracyVsKSvg(*r), HasSubstr("<polyline"));
  ASSERT_FALSE(r->scatter.empty());
  EXPECT_THAT(ScatterSvg(r->scatter[0]), HasSubstr("<circle"));
}

TEST(EvaluationTest, ExplicitSplitAndErrors) {
  EvaluationOptions o;
  o.ks = {5};
  o.seeds = 1;
  o.methods = {core::Method::kBaseline};
  o.train = {"gpu_a", "cpu_a"};
  o.test = {"cpu_b"};
  absl::StatusOr<EvaluationReport> r = RunEvaluation(Devices(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results.size(), 1u);
  EXPECT_EQ(r->results[0].device, "cpu_b");
  o.test = {"nope"};
  EXPECT_THAT(std::string(RunEvaluation(Devices(), o).status().message()), HasSubstr("nope"));
}

TEST(EvaluationTest, FirstSeedStartsADisjointRunOfSeeds) {
  // Seeds {0, 1} together are the mean of seed 0 alone and seed 1 alone (first_seed = 1).
  EvaluationOptions o;
  o.ks = {3};
  o.scatter_k = 3;
  o.methods = {core::Method::kBaseline, core::Method::kMapleX};
  o.seeds = 2;
  absl::StatusOr<EvaluationReport> both = RunEvaluation(Devices(), o);
  o.seeds = 1;
  absl::StatusOr<EvaluationReport> first = RunEvaluation(Devices(), o);
  o.first_seed = 1;
  absl::StatusOr<EvaluationReport> second = RunEvaluation(Devices(), o);
  ASSERT_TRUE(both.ok() && first.ok() && second.ok());
  ASSERT_EQ(both->results.size(), first->results.size());
  ASSERT_EQ(both->results.size(), second->results.size());
  int differ = 0;
  for (size_t i = 0; i < both->results.size(); ++i) {
    const double a = first->results[i].connected.spearman;
    const double b = second->results[i].connected.spearman;
    EXPECT_NEAR(both->results[i].connected.spearman, (a + b) / 2, 1e-12)
        << both->results[i].device;
    differ += a != b;
  }
  EXPECT_GT(differ, 0);  // different draws
  // The scatter series come from the first seed of the run, whichever it is.
  EXPECT_EQ(second->scatter.size(), first->scatter.size());
  EXPECT_FALSE(second->scatter.empty());
}

TEST(EvaluationTest, DrawsAreDeterministicAndDistinct) {
  std::vector<int32_t> pool(100);
  for (int i = 0; i < 100; ++i) pool[i] = i * 3;
  const auto a = DrawSamples(pool, 10, 4, "dev");
  EXPECT_EQ(a, DrawSamples(pool, 10, 4, "dev"));
  EXPECT_NE(a, DrawSamples(pool, 10, 5, "dev"));
  EXPECT_EQ(std::set<int32_t>(a.begin(), a.end()).size(), 10u);
}

}  // namespace
}  // namespace maplex::core

#include "core/eval/cross_validation.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/synthetic_devices.h"

namespace maplex::core {
namespace {

using ::testing::HasSubstr;

std::vector<LatencySample> Samples(int n) {
  std::vector<LatencySample> out;
  for (int i = 0; i < n; ++i) out.push_back({7 * i + 3, 1.0 + i});
  return out;
}

// Records every fold's training and held-out archs; predicts 2 ms for everything.
struct RecordingFitter {
  std::vector<std::vector<int32_t>> training, held_out;
  FoldFitter AsFitter() {
    return [this](absl::Span<const LatencySample> t, absl::Span<const int32_t> h,
                  absl::Span<LatencyPrediction> out) {
      std::vector<int32_t> archs;
      for (const LatencySample& s : t) archs.push_back(s.arch_index);
      training.push_back(archs);
      held_out.emplace_back(h.begin(), h.end());
      for (LatencyPrediction& p : out) p = {2, 1, 4};
      return absl::OkStatus();
    };
  }
};

TEST(CrossValidateTest, EverySampleIsHeldOutOnceAndNeverFitOnInItsFold) {
  RecordingFitter rec;
  absl::StatusOr<CrossValidation> cv = CrossValidate(Samples(23), {}, rec.AsFitter());
  ASSERT_TRUE(cv.ok()) << cv.status();
  EXPECT_EQ(cv->folds, 5);
  ASSERT_EQ(rec.held_out.size(), 5u);
  std::multiset<int32_t> all_held;
  for (size_t f = 0; f < rec.held_out.size(); ++f) {
    EXPECT_EQ(rec.training[f].size() + rec.held_out[f].size(), 23u);
    for (int32_t a : rec.held_out[f]) {
      all_held.insert(a);
      EXPECT_EQ(std::count(rec.training[f].begin(), rec.training[f].end(), a), 0)
          << "fold " << f << " fit on its held-out arch " << a;
    }
  }
  EXPECT_EQ(all_held.size(), 23u);
  EXPECT_EQ(std::set<int32_t>(all_held.begin(), all_held.end()).size(), 23u);
  ASSERT_EQ(cv->held_out.size(), 23u);
  EXPECT_EQ(cv->metrics.count, 23);
}

TEST(CrossValidateTest, FewSamplesAreLeaveOneOut) {
  RecordingFitter rec;
  absl::StatusOr<CrossValidation> cv = CrossValidate(Samples(4), {}, rec.AsFitter());
  ASSERT_TRUE(cv.ok()) << cv.status();
  EXPECT_EQ(cv->folds, 4);
  for (const auto& t : rec.training) EXPECT_EQ(t.size(), 3u);
  for (const auto& h : rec.held_out) EXPECT_EQ(h.size(), 1u);
}

TEST(CrossValidateTest, ScoredSamplesAreCappedButAllOthersAreFitOn) {
  RecordingFitter rec;
  CrossValidationOptions o;
  o.max_scored_samples = 50;
  absl::StatusOr<CrossValidation> cv = CrossValidate(Samples(1000), o, rec.AsFitter());
  ASSERT_TRUE(cv.ok()) << cv.status();
  EXPECT_EQ(cv->folds, 5);
  EXPECT_EQ(cv->held_out.size(), 50u);
  for (size_t f = 0; f < rec.training.size(); ++f) EXPECT_EQ(rec.training[f].size(), 990u);
}

TEST(CrossValidateTest, IsDeterministicAndTheSeedChangesTheFolds) {
  RecordingFitter a, b, c;
  CrossValidationOptions o;
  ASSERT_TRUE(CrossValidate(Samples(30), o, a.AsFitter()).ok());
  ASSERT_TRUE(CrossValidate(Samples(30), o, b.AsFitter()).ok());
  o.seed = 2;
  ASSERT_TRUE(CrossValidate(Samples(30), o, c.AsFitter()).ok());
  EXPECT_EQ(a.held_out, b.held_out);
  EXPECT_NE(a.held_out, c.held_out);
}

TEST(CrossValidateTest, ScoresOnlyWhatTheFitPredicts) {
  // A "model" that knows the truth scores perfectly; one that ignores the device does not.
  const std::vector<LatencySample> samples = Samples(40);
  auto truth = [&](int32_t arch) {
    for (const LatencySample& s : samples) {
      if (s.arch_index == arch) return s.latency_ms;
    }
    return 0.0;
  };
  absl::StatusOr<CrossValidation> oracle =
      CrossValidate(samples, {},
                    [&](absl::Span<const LatencySample>, absl::Span<const int32_t> held,
                        absl::Span<LatencyPrediction> out) {
                      for (size_t i = 0; i < held.size(); ++i) {
                        const double ms = truth(held[i]);
                        out[i] = {ms, 0.9 * ms, 1.1 * ms};
                      }
                      return absl::OkStatus();
                    });
  ASSERT_TRUE(oracle.ok());
  EXPECT_DOUBLE_EQ(oracle->metrics.spearman, 1);
  EXPECT_DOUBLE_EQ(oracle->metrics.acc10, 1);

  RecordingFitter constant;
  absl::StatusOr<CrossValidation> flat = CrossValidate(samples, {}, constant.AsFitter());
  ASSERT_TRUE(flat.ok());
  EXPECT_DOUBLE_EQ(flat->metrics.spearman, 0);
  EXPECT_LT(flat->metrics.acc10, 0.1);
}

TEST(CrossValidateTest, RejectsTooFewSamplesBadOptionsAndPassesFitErrors) {
  RecordingFitter rec;
  absl::StatusOr<CrossValidation> few = CrossValidate(Samples(2), {}, rec.AsFitter());
  EXPECT_EQ(few.status().code(), absl::StatusCode::kFailedPrecondition);
  CrossValidationOptions bad;
  bad.folds = 1;
  EXPECT_EQ(CrossValidate(Samples(10), bad, rec.AsFitter()).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<CrossValidation> failing =
      CrossValidate(Samples(10), {},
                    [](absl::Span<const LatencySample>, absl::Span<const int32_t>,
                       absl::Span<LatencyPrediction>) { return absl::InternalError("fit broke"); });
  EXPECT_THAT(failing.status().message(), HasSubstr("fit broke"));
}

// A fleet of the synthetic references plus a target measured on every 100th arch.
std::vector<DeviceData> Fleet() {
  std::vector<DeviceData> devices;
  for (const testing::DeviceShape& s : testing::ReferenceShapes()) {
    devices.push_back(testing::SyntheticDevice(s));
  }
  testing::DeviceShape target{"target", "", 1.6, 0.5, 0.12, 0.07, DeviceCategory::kDesktopCpu, 12};
  devices.push_back(testing::SyntheticDevice(target, 100));
  return devices;
}

TEST(CrossValidateDevicesTest, ScoresTargetsAndLeavesReferencesUnscored) {
  std::vector<DeviceData> devices = Fleet();
  absl::StatusOr<std::vector<DeviceCrossValidation>> all =
      CrossValidateDevices(devices, TrainOptions(), CrossValidationOptions());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), devices.size());
  for (const DeviceCrossValidation& d : *all) {
    if (d.device == "target") {
      ASSERT_TRUE(d.cv.has_value());
      EXPECT_FALSE(d.reference);
      EXPECT_EQ(d.samples, 157);
      EXPECT_EQ(d.cv->folds, 5);
      EXPECT_EQ(d.cv->held_out.size(), 157u);
      // The target is a blend of the references' formulas: held-out cells are predictable.
      EXPECT_GT(d.cv->metrics.spearman, 0.9);
    } else {
      EXPECT_TRUE(d.reference);
      EXPECT_FALSE(d.cv.has_value());
      EXPECT_THAT(d.not_scored, HasSubstr("reference"));
    }
  }
}

TEST(CrossValidateDevicesTest, ShuffledLatenciesScoreMuchWorse) {
  // The measurements no longer belong to their archs: a model that fits them can predict
  // the held-out ones no better than chance, and an honest score must say so (an in-sample
  // score of the served model, which serves them back, stayed at 1).
  std::vector<DeviceData> devices = Fleet();
  CrossValidationOptions o;
  absl::StatusOr<std::vector<DeviceCrossValidation>> honest =
      CrossValidateDevices(devices, TrainOptions(), o, {"target"});
  ASSERT_TRUE(honest.ok()) << honest.status();
  std::vector<LatencySample>& s = devices.back().samples;
  std::vector<double> ms;
  for (const LatencySample& x : s) ms.push_back(x.latency_ms);
  std::rotate(ms.begin(), ms.begin() + static_cast<long>(ms.size() / 3), ms.end());
  for (size_t i = 0; i < s.size(); ++i) s[i].latency_ms = ms[i];
  absl::StatusOr<std::vector<DeviceCrossValidation>> shuffled =
      CrossValidateDevices(devices, TrainOptions(), o, {"target"});
  ASSERT_TRUE(shuffled.ok()) << shuffled.status();
  ASSERT_EQ(honest->size(), 1u);
  ASSERT_EQ(shuffled->size(), 1u);
  ASSERT_TRUE((*honest)[0].cv.has_value());
  ASSERT_TRUE((*shuffled)[0].cv.has_value());
  EXPECT_GT((*honest)[0].cv->metrics.spearman, 0.9);
  EXPECT_LT((*shuffled)[0].cv->metrics.spearman, 0.5);
  EXPECT_LT((*shuffled)[0].cv->metrics.acc10, (*honest)[0].cv->metrics.acc10);
}

TEST(CrossValidateDevicesTest, DevicesWithTooFewSamplesAreNotScored) {
  std::vector<DeviceData> devices = Fleet();
  devices.back().samples.resize(2);
  absl::StatusOr<std::vector<DeviceCrossValidation>> all =
      CrossValidateDevices(devices, TrainOptions(), CrossValidationOptions(), {"target"});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_FALSE((*all)[0].cv.has_value());
  EXPECT_THAT((*all)[0].not_scored, HasSubstr("fewer than 3"));
}

}  // namespace
}  // namespace maplex::core

// The function model: features, reference fits, target fits per method, serialization and
// the on-demand Predict contract, on synthetic devices whose latency is a known function of
// the architecture's structure.
#include "core/model/function_model.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "core/eval/function_evaluation.h"
#include "core/eval/metrics.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

// An additive FBNet device: ms = level * (1 + sum_l profile[l][block]) with the profile a mix
// of two latent "hardware factors" (compute-bound: expansion and kernel matter; launch-bound:
// every non-skip block costs the same).
std::vector<double> DeviceWeights(const FeatureMap& phi, double level, double compute,
                                  double launch) {
  std::vector<double> w(phi.dim(), 0.0);
  w[0] = level;
  for (int l = 0; l < kFbnetLayerCount; ++l) {
    for (int b = 0; b < kFbnetBlockCount; ++b) {
      const double size = b == kFbnetSkip ? 0 : (b % 4 == 3 ? 6 : b % 4 == 2 ? 3 : 1);
      const double kernel = b >= 4 && b < 8 ? 1.6 : 1.0;
      const double c = compute * size * kernel * (1 + 0.05 * l);
      const double n = b == kFbnetSkip ? 0 : launch;
      w[1 + l * kFbnetBlockCount + b] = level * 0.02 * (c + n);
    }
  }
  return w;
}

std::vector<double> Latencies(const FeatureMap& phi, const std::vector<double>& w,
                              const std::vector<Architecture>& archs) {
  std::vector<double> ms;
  for (const Architecture& a : archs) ms.push_back(phi.Dot(a, w.data()));
  return ms;
}

// Mean absolute percentage error of a fitted target on `test` against `truth`.
double Mape(const FunctionFitter& fitter, const FunctionDevice& f,
            const std::vector<Architecture>& test, const std::vector<double>& truth) {
  double mape = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    mape += std::abs(fitter.PredictMs(f, test[i]) / truth[i] - 1) / test.size();
  }
  return mape;
}

TEST(FeatureMap, DimensionsAndActiveIndices) {
  const FeatureMap fb(FbnetSpace::Get());
  EXPECT_EQ(fb.dim(), 1 + 22 * 9);
  EXPECT_EQ(fb.active_count(), 1 + 22);
  const FeatureMap nb(Nb201Space::Get());
  EXPECT_EQ(nb.dim(), 1 + 6 * 5 + 15 * 25);
  EXPECT_EQ(nb.active_count(), 1 + 6 + 15);
  const Architecture a = FbnetSpace::Get().Sample(1, 3)[0];
  std::vector<int> active(fb.active_count());
  fb.Active(a, active.data());
  EXPECT_EQ(active[0], 0);
  for (int l = 0; l < 22; ++l) EXPECT_EQ(active[1 + l], 1 + l * 9 + a.choice(l));
  std::vector<double> w(fb.dim());
  for (int i = 0; i < fb.dim(); ++i) w[i] = 0.001 * i;
  double sum = 0;
  for (int i : active) sum += w[i];
  EXPECT_DOUBLE_EQ(fb.Dot(a, w.data()), sum);
}

TEST(FitReference, RecoversAnAdditiveDeviceOnUnseenArchitectures) {
  const FeatureMap phi(FbnetSpace::Get());
  const std::vector<double> truth = DeviceWeights(phi, 10, 1.0, 0.5);
  const std::vector<Architecture> train = FbnetSpace::Get().Sample(600, 1);
  const std::vector<Architecture> test = FbnetSpace::Get().Sample(200, 2);
  const ReferenceFit fit = FitReference(phi, "d", "h", {}, train, Latencies(phi, truth, train),
                                        /*lambda=*/1e-6);
  for (const Architecture& a : test) {
    const double want = phi.Dot(a, truth.data());
    EXPECT_NEAR(phi.Dot(a, fit.weights.data()), want, 1e-6 * want);
  }
}

TEST(FitReference, Nb201PairTermsCaptureEdgeInteractions) {
  // Latency jumps when edges 0 and 5 both hold a 3x3 conv: not a sum of per-edge effects.
  const Nb201Space& space = Nb201Space::Get();
  const FeatureMap phi(space);
  std::vector<Architecture> archs;
  std::vector<double> ms;
  for (int32_t i = 0; i < kNb201CellCount; i += 3) {
    const Architecture a = *space.ArchitectureAt(i);
    archs.push_back(a);
    double y = 1 + 0.1 * space.PrimitiveCount(a);
    if (a.choice(0) == 3 && a.choice(5) == 3) y += 2;
    ms.push_back(y);
  }
  const ReferenceFit fit = FitReference(phi, "d", "h", {}, archs, ms, 1e-6);
  double worst = 0;
  for (size_t i = 0; i < archs.size(); ++i) {
    worst = std::max(worst, std::abs(phi.Dot(archs[i], fit.weights.data()) - ms[i]));
  }
  EXPECT_LT(worst, 1e-4);
}

class FitterTest : public ::testing::Test {
 protected:
  FitterTest() : phi_(FbnetSpace::Get()) {
    const double mixes[][2] = {{1.0, 0.1}, {0.7, 0.5}, {0.3, 1.0}, {0.1, 1.5}, {1.2, 0.3}};
    for (int d = 0; d < 5; ++d) {
      truths_.push_back(DeviceWeights(phi_, 2 + 3 * d, mixes[d][0], mixes[d][1]));
      const std::vector<Architecture> train = FbnetSpace::Get().Sample(400, 10 + d);
      refs_.push_back(FitReference(phi_, "ref" + std::to_string(d), "hw" + std::to_string(d), {},
                                   train, Latencies(phi_, truths_.back(), train), 1e-6));
    }
  }
  FeatureMap phi_;
  std::vector<std::vector<double>> truths_;
  std::vector<ReferenceFit> refs_;
};

TEST_F(FitterTest, BaselinePicksTheScaledTwinAndMapleTracksANewMix) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  const std::vector<Architecture> test = FbnetSpace::Get().Sample(300, 99);
  // Target A: exactly 3x reference 2 -> the baseline picks it with alpha = log 3, beta = 1.
  std::vector<double> twin = truths_[2];
  for (double& v : twin) v *= 3;
  const std::vector<Architecture> k10 = FbnetSpace::Get().Sample(10, 77);
  std::vector<FunctionSample> samples;
  for (const Architecture& a : k10) samples.push_back({a, phi_.Dot(a, twin.data())});
  const FunctionDevice base = fitter.Fit(Method::kBaseline, samples, {}, {});
  EXPECT_EQ(base.transfer_reference, 2);
  EXPECT_NEAR(base.alpha, std::log(3.0), 0.02);
  EXPECT_NEAR(base.beta, 1.0, 0.01);
  EXPECT_EQ(base.mix, 1);

  // Target B: a mix no reference has (between refs 1 and 2), seen through 10 samples.
  const std::vector<double> fresh = DeviceWeights(phi_, 7, 0.5, 0.75);
  samples.clear();
  for (const Architecture& a : k10) samples.push_back({a, phi_.Dot(a, fresh.data())});
  const std::vector<double> truth = Latencies(phi_, fresh, test);
  for (Method m :
       {Method::kMaple, Method::kMapleWeights, Method::kMapleVirtualExamples, Method::kMapleX}) {
    const FunctionDevice f = fitter.Fit(m, samples, {}, {});
    std::vector<LatencyPrediction> pred;
    for (const Architecture& a : test) {
      const double y = fitter.PredictMs(f, a);
      pred.push_back({y, y, y});
    }
    const AccuracyMetrics acc = ComputeAccuracy(pred, truth);
    EXPECT_GT(acc.spearman, 0.97) << MethodName(m);
    EXPECT_GT(acc.acc10, 0.95) << MethodName(m);
  }
  // No samples: the references' mean function, finite everywhere.
  const FunctionDevice none = fitter.Fit(Method::kMapleX, {}, {}, {});
  EXPECT_EQ(none.mix, 0);
  for (const Architecture& a : test) {
    double mean = 0;
    for (const ReferenceFit& r : refs_) mean += phi_.Dot(a, r.weights.data()) / refs_.size();
    EXPECT_NEAR(fitter.PredictMs(none, a), mean, 1e-9 * mean);
  }

  // The prior's shape alone (no factors, no own deviation: only the level is fit) is clearly
  // worse: the fit above is the samples' doing, not the prior mean's.
  FunctionConfig rigid;
  rigid.rank = 0;
  rigid.deviation_sd = 1e-6;
  const double mape_rigid =
      Mape(fitter, fitter.Fit(Method::kMaple, samples, {}, rigid), test, truth);
  const double mape_fit = Mape(fitter, fitter.Fit(Method::kMaple, samples, {}, {}), test, truth);
  EXPECT_LT(3 * mape_fit, mape_rigid) << mape_fit << " vs " << mape_rigid;
}

// macs_sd: a device whose latency follows the network's MACs, unlike every reference (they
// are compute/launch mixes of DeviceWeights), is reached from 10 samples only with the MACs
// direction in the prior.
TEST_F(FitterTest, MacsDirectionReachesAFlopsBoundDeviceNoReferenceResembles) {
  const FbnetSpace& space = FbnetSpace::Get();
  const FunctionFitter fitter(phi_, refs_, space.Sample(256, 5));
  const std::vector<Architecture> test = space.Sample(300, 99);
  auto flops_bound = [&](const Architecture& a) {
    return 2 + 1e-7 * static_cast<double>(space.Cost(a).macs);
  };
  std::vector<FunctionSample> samples;
  for (const Architecture& a : space.Sample(10, 77)) samples.push_back({a, flops_bound(a)});
  std::vector<double> truth;
  for (const Architecture& a : test) truth.push_back(flops_bound(a));
  auto mape = [&](const FunctionDevice& f) { return Mape(fitter, f, test, truth); };
  FunctionConfig with_macs;
  with_macs.macs_sd = 0.3;
  const double without = mape(fitter.Fit(Method::kMaple, samples, {}, {}));
  const double with = mape(fitter.Fit(Method::kMaple, samples, {}, with_macs));
  std::printf("flops-bound device, k = 10: MAPE %.4f without the MACs direction, %.4f with\n",
              without, with);
  EXPECT_LT(1.5 * with, without);  // measured 0.053 vs 0.028
}

// noise_ml: samples far noisier than FunctionConfig::noise (15 % log-normal, as a phone's
// whole-millisecond, run-to-run values) are fit more smoothly when each target's noise is
// chosen by the marginal likelihood; exact samples keep a fit as good as the fixed noise's.
TEST_F(FitterTest, NoiseByMarginalLikelihoodSmoothsOnlyNoisySamples) {
  const FbnetSpace& space = FbnetSpace::Get();
  const FunctionFitter fitter(phi_, refs_, space.Sample(128, 5));
  const std::vector<Architecture> test = space.Sample(300, 99);
  const std::vector<double> fresh = DeviceWeights(phi_, 7, 0.5, 0.75);
  const std::vector<double> truth = Latencies(phi_, fresh, test);
  auto mape = [&](const FunctionDevice& f) { return Mape(fitter, f, test, truth); };
  FunctionConfig ml;
  ml.noise_ml = 1;
  double fixed_noisy = 0, ml_noisy = 0, fixed_exact = 0, ml_exact = 0;
  for (int draw = 0; draw < 5; ++draw) {
    std::vector<FunctionSample> noisy, exact;
    uint64_t state = 1000 + draw;
    for (const Architecture& a : space.Sample(10, 300 + draw)) {
      // A standard normal from two uniforms (Box-Muller on SplitMix64 draws).
      const double u1 = (SplitMix64(state) >> 11) * 0x1.0p-53 + 1e-12;
      const double u2 = (SplitMix64(state) >> 11) * 0x1.0p-53;
      const double normal = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
      const double y = phi_.Dot(a, fresh.data());
      exact.push_back({a, y});
      noisy.push_back({a, y * std::exp(0.15 * normal)});
    }
    fixed_noisy += mape(fitter.Fit(Method::kMaple, noisy, {}, {})) / 5;
    ml_noisy += mape(fitter.Fit(Method::kMaple, noisy, {}, ml)) / 5;
    fixed_exact += mape(fitter.Fit(Method::kMaple, exact, {}, {})) / 5;
    ml_exact += mape(fitter.Fit(Method::kMaple, exact, {}, ml)) / 5;
  }
  std::printf(
      "MAPE, noisy samples: fixed noise %.4f, by likelihood %.4f; exact samples: %.4f, "
      "%.4f\n",
      fixed_noisy, ml_noisy, fixed_exact, ml_exact);
  EXPECT_LT(ml_noisy, 0.9 * fixed_noisy);
  EXPECT_LT(ml_exact, 1.1 * fixed_exact);
}

// adaptive_mix: the blend share follows which part explains the k samples better out of
// sample. A power transform of one reference (not additive, so the posterior cannot follow
// it) leans on the baseline; an additive mix no reference has keeps the posterior.
TEST_F(FitterTest, AdaptiveMixLeansOnWhicheverPartPredictsHeldOutSamples) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  const std::vector<Architecture> k10 = FbnetSpace::Get().Sample(10, 77);
  FunctionConfig adaptive;
  adaptive.adaptive_mix = 1;
  adaptive.baseline_mix = 1;
  adaptive.baseline_mix_min_samples = 1;
  adaptive.virtual_min_samples = 1 << 30;

  std::vector<FunctionSample> power;
  for (const Architecture& a : k10) {
    power.push_back({a, 2 * std::pow(phi_.Dot(a, truths_[2].data()), 1.6)});
  }
  const FunctionDevice p = fitter.Fit(Method::kMapleX, power, {}, adaptive);
  EXPECT_EQ(p.transfer_reference, 2);
  EXPECT_GT(p.mix, 0.8) << p.mix;

  const std::vector<double> fresh = DeviceWeights(phi_, 7, 0.5, 0.75);
  std::vector<FunctionSample> additive;
  for (const Architecture& a : k10) additive.push_back({a, phi_.Dot(a, fresh.data())});
  const FunctionDevice f = fitter.Fit(Method::kMapleX, additive, {}, adaptive);
  EXPECT_LT(f.mix, 0.3);
  EXPECT_LT(3 * f.mix, p.mix) << f.mix << " vs " << p.mix;

  // The share scales baseline_mix; without adaptive_mix it is baseline_mix itself.
  adaptive.baseline_mix = 0.5;
  EXPECT_NEAR(fitter.Fit(Method::kMapleX, power, {}, adaptive).mix, 0.5 * p.mix, 1e-12);
  adaptive.adaptive_mix = 0;
  EXPECT_EQ(fitter.Fit(Method::kMapleX, additive, {}, adaptive).mix, 0.5);
  // Only maplex blends.
  adaptive.adaptive_mix = 1;
  EXPECT_EQ(fitter.Fit(Method::kMapleWeights, power, {}, adaptive).mix, 0);
}

// The agreement options and the prior-shape options (FunctionConfig::agreement_mode,
// factor_unweighted, transfer_shape). A rigid prior (no own deviation) with sharp agreement
// makes the fit show which references the weights chose and what the factors can reach.
class AgreementTest : public FitterTest {
 protected:
  double Mape(const FunctionFitter& fitter, const FunctionDevice& f,
              const std::vector<double>& truth) const {
    return core::Mape(fitter, f, test_, truth);
  }
  // Cosine between a fit's coefficients (intercept aside) and reference d's.
  double Cosine(const FunctionDevice& f, int d) const {
    double ab = 0, aa = 0, bb = 0;
    for (int j = 1; j < phi_.dim(); ++j) {
      ab += f.weights[j] * refs_[d].weights[j];
      aa += f.weights[j] * f.weights[j];
      bb += refs_[d].weights[j] * refs_[d].weights[j];
    }
    return ab / std::sqrt(aa * bb);
  }
  // A config that puts all weight on the best-agreeing reference.
  static FunctionConfig SharpWeights() {
    FunctionConfig c;
    c.deviation_sd = 1e-6;
    c.unweighted_share = 0;
    c.agreement_scale = 0.01;
    return c;
  }
  // No prior factors, agreement at 0.02: the weights alone shape the prior.
  static FunctionConfig PriorlessWeights() {
    FunctionConfig c = SharpWeights();
    c.rank = 0;
    c.agreement_scale = 0.02;
    return c;
  }
  // Samples 2 * ref2^1.6 of `archs`: reference 2's log-linear transfer is exact, with
  // slope 1.6.
  std::vector<FunctionSample> PowerOfReference2(const std::vector<Architecture>& archs) const {
    std::vector<FunctionSample> power;
    for (const Architecture& a : archs) {
      power.push_back({a, 2 * std::pow(phi_.Dot(a, truths_[2].data()), 1.6)});
    }
    return power;
  }
  // k10_ samples of a mix no reference has, and its latencies on test_.
  void UnseenMix(std::vector<FunctionSample>* samples, std::vector<double>* truth) const {
    const std::vector<double> fresh = DeviceWeights(phi_, 7, 0.5, 0.75);
    for (const Architecture& a : k10_) samples->push_back({a, phi_.Dot(a, fresh.data())});
    *truth = Latencies(phi_, fresh, test_);
  }
  std::vector<Architecture> k10_ = FbnetSpace::Get().Sample(10, 77);
  std::vector<Architecture> test_ = FbnetSpace::Get().Sample(300, 99);
};

TEST_F(AgreementTest, LevelAgreementRejectsAReferenceThatOnlyASlopeMakesAgree) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  FunctionConfig c = PriorlessWeights();
  // 2 * ref2^1.6: reference 2's log-linear transfer is exact (in-sample and left-one-out
  // error 0), but only with slope 1.6, which the prior's free level cannot follow.
  const std::vector<FunctionSample> power = PowerOfReference2(k10_);
  c.agreement_mode = 0;
  const FunctionDevice in_sample = fitter.Fit(Method::kMapleWeights, power, {}, c);
  c.agreement_mode = 1;
  const FunctionDevice transfer_loo = fitter.Fit(Method::kMapleWeights, power, {}, c);
  c.agreement_mode = 2;
  const FunctionDevice level_loo = fitter.Fit(Method::kMapleWeights, power, {}, c);
  // Closeness to reference 2 as 1 - cosine of the coefficients.
  const double away_in_sample = 1 - Cosine(in_sample, 2);
  const double away_transfer_loo = 1 - Cosine(transfer_loo, 2);
  const double away_level_loo = 1 - Cosine(level_loo, 2);
  printf("1 - cosine to reference 2: in-sample %.5f, transfer LOO %.5f, level LOO %.5f\n",
         away_in_sample, away_transfer_loo, away_level_loo);
  EXPECT_LT(3 * away_in_sample, away_level_loo);
  EXPECT_LT(3 * away_transfer_loo, away_level_loo);
  std::vector<double> truth;
  for (const Architecture& a : test_) {
    truth.push_back(2 * std::pow(phi_.Dot(a, truths_[2].data()), 1.6));
  }
  EXPECT_LT(Mape(fitter, level_loo, truth), Mape(fitter, in_sample, truth));

  // An exact 3x twin of reference 2 (slope 1): the level measure puts all weight on it.
  std::vector<FunctionSample> twin;
  for (const Architecture& a : k10_) twin.push_back({a, 3 * phi_.Dot(a, truths_[2].data())});
  c.agreement_mode = 2;
  EXPECT_LT(1 - Cosine(fitter.Fit(Method::kMapleWeights, twin, {}, c), 2), 1e-6);
}

TEST_F(AgreementTest, UnweightedFactorsLetSamplesReachAMixTheWeightsDidNotChoose) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  FunctionConfig c = SharpWeights();
  std::vector<FunctionSample> samples;
  std::vector<double> truth;
  UnseenMix(&samples, &truth);
  const double weighted = Mape(fitter, fitter.Fit(Method::kMapleWeights, samples, {}, c), truth);
  c.factor_unweighted = 1;
  const double unweighted = Mape(fitter, fitter.Fit(Method::kMapleWeights, samples, {}, c), truth);
  EXPECT_LT(2 * unweighted, weighted) << unweighted << " vs " << weighted;
}

TEST_F(AgreementTest, LeaveOneOutWeightingFallsBackToUniformWeightsOnlyWhenTheyPredictBetter) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  FunctionConfig c = SharpWeights();
  // A mix no reference has: the sharp weights leave the samples no direction to reach it,
  // uniform weights do, and their leave-one-out error says so.
  std::vector<FunctionSample> samples;
  std::vector<double> truth;
  UnseenMix(&samples, &truth);
  const double sharp = Mape(fitter, fitter.Fit(Method::kMapleWeights, samples, {}, c), truth);
  c.loo_weighting = 1;
  const double chosen = Mape(fitter, fitter.Fit(Method::kMapleWeights, samples, {}, c), truth);
  c.loo_weighting = 2;
  const double blended = Mape(fitter, fitter.Fit(Method::kMapleWeights, samples, {}, c), truth);
  EXPECT_LT(2 * chosen, sharp) << chosen << " vs " << sharp;
  EXPECT_LT(2 * blended, sharp) << blended << " vs " << sharp;
  // An exact twin of reference 2: the weighted posterior predicts its samples better, so
  // it is kept (1) and dominates the blend (2).
  std::vector<FunctionSample> twin;
  for (const Architecture& a : k10_) twin.push_back({a, 3 * phi_.Dot(a, truths_[2].data())});
  c.loo_weighting = 0;
  const FunctionDevice weighted = fitter.Fit(Method::kMapleWeights, twin, {}, c);
  c.loo_weighting = 1;
  EXPECT_EQ(fitter.Fit(Method::kMapleWeights, twin, {}, c).weights, weighted.weights);
  c.loo_weighting = 2;
  EXPECT_LT(1 - Cosine(fitter.Fit(Method::kMapleWeights, twin, {}, c), 2), 1e-3);
  // Fewer than 4 samples, or an unweighted method: no effect.
  c.loo_weighting = 1;
  const std::vector<FunctionSample> three(samples.begin(), samples.begin() + 3);
  FunctionConfig off = c;
  off.loo_weighting = 0;
  EXPECT_EQ(fitter.Fit(Method::kMapleWeights, three, {}, c).weights,
            fitter.Fit(Method::kMapleWeights, three, {}, off).weights);
  EXPECT_EQ(fitter.Fit(Method::kMaple, samples, {}, c).weights,
            fitter.Fit(Method::kMaple, samples, {}, off).weights);
}

TEST_F(AgreementTest, LeaveOneOutChoiceTakesTheTransferOnlyWhenItPredictsTheSamplesBetter) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  FunctionConfig c;
  c.loo_weighting = 3;
  c.baseline_mix = 0;
  c.virtual_min_samples = 1 << 30;
  // A power transform of reference 2: its transfer is exact, the additive posterior is not.
  const std::vector<FunctionSample> power = PowerOfReference2(k10_);
  const FunctionDevice p = fitter.Fit(Method::kMapleX, power, {}, c);
  EXPECT_EQ(p.transfer_reference, 2);
  EXPECT_EQ(p.mix, 1);
  EXPECT_NEAR(p.beta, 1.6, 0.01);
  // An additive mix no reference has: the posterior predicts the samples better.
  const std::vector<double> fresh = DeviceWeights(phi_, 7, 0.5, 0.75);
  std::vector<FunctionSample> additive;
  for (const Architecture& a : k10_) additive.push_back({a, phi_.Dot(a, fresh.data())});
  EXPECT_EQ(fitter.Fit(Method::kMapleX, additive, {}, c).mix, 0);
  // Only maplex, and not with 1.
  EXPECT_EQ(fitter.Fit(Method::kMapleWeights, power, {}, c).mix, 0);
  c.loo_weighting = 1;
  EXPECT_EQ(fitter.Fit(Method::kMapleX, power, {}, c).mix, 0);
}

TEST_F(AgreementTest, TransferShapeGivesThePriorTheReferencesSlope) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  FunctionConfig c = PriorlessWeights();
  const std::vector<FunctionSample> power = PowerOfReference2(k10_);
  std::vector<double> truth;
  for (const FunctionSample& s : PowerOfReference2(test_)) truth.push_back(s.latency_ms);
  const double plain = Mape(fitter, fitter.Fit(Method::kMapleWeights, power, {}, c), truth);
  c.transfer_shape = 1e-9;  // no shrinkage towards slope 1
  const double sloped = Mape(fitter, fitter.Fit(Method::kMapleWeights, power, {}, c), truth);
  EXPECT_LT(2 * sloped, plain) << sloped << " vs " << plain;
}

TEST_F(FitterTest, ModelSerializesCompactlyAndPredictsIdentically) {
  const FunctionFitter fitter(phi_, refs_, FbnetSpace::Get().Sample(128, 5));
  FunctionModelParams params;
  params.space = "fbnet";
  for (const ReferenceFit& r : refs_) params.devices.push_back({r.device, r.weights});
  std::vector<FunctionSample> samples;
  const std::vector<double> fresh = DeviceWeights(phi_, 7, 0.5, 0.75);
  for (const Architecture& a : FbnetSpace::Get().Sample(10, 77)) {
    samples.push_back({a, phi_.Dot(a, fresh.data())});
  }
  FunctionConfig blend;
  blend.baseline_mix = 0.5;
  blend.baseline_mix_min_samples = 1;
  FunctionDevice target = fitter.Fit(Method::kMapleX, samples, {}, blend);
  ASSERT_EQ(target.mix, 0.5);
  target.device = "board";
  target.log_half_width = 0.1;  // transfer_reference indexes refs_ == params.devices[0..4]
  params.devices.push_back(target);
  absl::StatusOr<FunctionModel> model = FunctionModel::Create(params);
  ASSERT_TRUE(model.ok()) << model.status();

  const std::string bytes = SerializeFunctionModel(params);
  EXPECT_LE(bytes.size(), 16 * 1024 * params.devices.size());
  EXPECT_LE(bytes.size() / params.devices.size(), 1700u);  // 199 doubles + a header each
  absl::StatusOr<FunctionModelParams> back = ParseFunctionModel(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  absl::StatusOr<FunctionModel> reloaded = FunctionModel::Create(*back);
  ASSERT_TRUE(reloaded.ok());

  const std::vector<Architecture> archs = FbnetSpace::Get().Sample(50, 8);
  std::vector<LatencyPrediction> a(archs.size()), b(archs.size());
  ASSERT_TRUE(model->Predict("board", archs, absl::MakeSpan(a)).ok());
  ASSERT_TRUE(reloaded->Predict("board", archs, absl::MakeSpan(b)).ok());
  for (size_t i = 0; i < archs.size(); ++i) {
    EXPECT_EQ(a[i].latency_ms, b[i].latency_ms);
    EXPECT_EQ(a[i].latency_ms, fitter.PredictMs(target, archs[i]));
    EXPECT_NEAR(a[i].upper_ms / a[i].latency_ms, std::exp(0.1), 1e-12);
    EXPECT_NEAR(a[i].lower_ms / a[i].latency_ms, std::exp(-0.1), 1e-12);
  }

  // Corrupt messages are rejected, never half-read.
  EXPECT_FALSE(ParseFunctionModel(bytes.substr(0, bytes.size() - 3)).ok());
  EXPECT_FALSE(ParseFunctionModel(bytes + "x").ok());
  std::string bad_magic = bytes;
  bad_magic[0] ^= 1;
  EXPECT_FALSE(ParseFunctionModel(bad_magic).ok());
  FunctionModelParams wrong = params;
  wrong.devices[0].weights.pop_back();
  EXPECT_FALSE(FunctionModel::Create(wrong).ok());
  EXPECT_FALSE(ParseFunctionModel(SerializeFunctionModel(wrong)).ok());
  wrong = params;
  wrong.devices.back().transfer_reference = 99;
  EXPECT_FALSE(FunctionModel::Create(wrong).ok());
  wrong = params;
  wrong.space = "darts";
  EXPECT_FALSE(FunctionModel::Create(wrong).ok());
  wrong = params;
  wrong.devices.push_back(wrong.devices[0]);
  EXPECT_FALSE(FunctionModel::Create(wrong).ok());

  // Predict's contract: unknown device, foreign architecture, size mismatch; nothing written.
  std::vector<LatencyPrediction> out(1, {-1, -1, -1});
  EXPECT_EQ(model->Predict("nope", {archs[0]}, absl::MakeSpan(out)).code(),
            absl::StatusCode::kNotFound);
  const Architecture cell = *Nb201Space::Get().ArchitectureAt(5);
  EXPECT_EQ(model->Predict("board", {cell}, absl::MakeSpan(out)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Predict("board", {archs[0], archs[1]}, absl::MakeSpan(out)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out[0].latency_ms, -1);
}

TEST(FunctionConfig, OverridesParseAndRejectUnknownNames) {
  FunctionConfig c;
  ASSERT_TRUE(ApplyFunctionConfigOverrides("rank=4,noise=0.1", &c).ok());
  EXPECT_EQ(c.rank, 4);
  EXPECT_EQ(c.noise, 0.1);
  ASSERT_TRUE(ApplyFunctionConfigOverrides("adaptive_mix=1", &c).ok());
  EXPECT_EQ(c.adaptive_mix, 1);
  ASSERT_TRUE(ApplyFunctionConfigOverrides(
                  "agreement_mode=2,factor_unweighted=0.5,transfer_shape=5,loo_weighting=1", &c)
                  .ok());
  EXPECT_EQ(c.loo_weighting, 1);
  EXPECT_EQ(c.agreement_mode, 2);
  EXPECT_EQ(c.factor_unweighted, 0.5);
  EXPECT_EQ(c.transfer_shape, 5);
  EXPECT_FALSE(ApplyFunctionConfigOverrides("bogus=1", &c).ok());
  EXPECT_FALSE(ApplyFunctionConfigOverrides("rank=x", &c).ok());
}

// The evaluation on a small synthetic FBNet table: 6 devices on 3 pieces of hardware.
TEST(FunctionEvaluation, HoldsArchitecturesOutAndScoresOnlyThem) {
  const FeatureMap phi(FbnetSpace::Get());
  SpaceLatencyTable table;
  table.space = &FbnetSpace::Get();
  table.archs = FbnetSpace::Get().Sample(300, 4);
  const double mixes[][2] = {{1.0, 0.1}, {0.9, 0.2}, {0.3, 1.0},
                             {0.4, 0.9}, {0.6, 0.5}, {0.5, 0.6}};
  for (int d = 0; d < 6; ++d) {
    SpaceLatencyTable::Column c;
    c.device = "dev" + std::to_string(d);
    c.hardware = "hw" + std::to_string(d / 2);
    c.latency_ms = Latencies(phi, DeviceWeights(phi, 3 + d, mixes[d][0], mixes[d][1]), table.archs);
    table.devices.push_back(std::move(c));
  }
  FunctionEvaluationOptions o;
  o.ks = {3, 10};
  o.seeds = 2;
  o.pool_size = 64;
  o.test_archs = {table.archs[0], table.archs[1], table.archs[2], table.archs[3]};
  absl::StatusOr<FunctionEvaluationReport> r = RunFunctionEvaluation(table, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->scored_rows, 4);
  ASSERT_EQ(r->report.results.size(), 5u * 2 * 6);
  for (const DeviceResult& d : r->report.results) {
    EXPECT_EQ(d.connected.count, 4) << d.device;  // exactly the held-out rows
    EXPECT_EQ(d.seed_count, 2);
  }
  ASSERT_EQ(r->report.means.size(), 10u);
  for (const MeanResult& m : r->report.means) {
    if (m.method != Method::kBaseline && m.k == 10) {
      EXPECT_GT(m.metrics.acc10, 0.9);
    }
  }
  // Nested choices exist for every fold, method and k, with a positive half width.
  EXPECT_EQ(r->choices.size(), 3u * 5 * 2);
  for (const FoldChoice& c : r->choices) EXPECT_GT(c.log_half_width, 0) << c.held_out;
  // maplex's settings come from the nested grid; the other methods run the config as given.
  for (const FoldChoice& c : r->choices) {
    if (c.method == Method::kMapleX) {
      EXPECT_TRUE(c.agreement_scale == 0.035 || c.agreement_scale == 0.05 ||
                  c.agreement_scale == 0.08 || c.agreement_scale == 0.12)
          << c.agreement_scale;
      EXPECT_TRUE(c.unweighted_share == 0.1 || c.unweighted_share == 0.2) << c.unweighted_share;
      if (c.adaptive_mix) {
        EXPECT_TRUE(c.baseline_mix == 0.5 || c.baseline_mix == 1.0) << c.baseline_mix;
      }
      // The inner evidence: a score of rho + acc10 in (0, 2]; a candidate replaces the
      // default only by beating it.
      EXPECT_GT(c.inner_default, 0);
      EXPECT_LE(c.inner_default, 2);
      EXPECT_GE(c.inner_chosen, c.inner_default);
    } else {
      EXPECT_EQ(c.inner_chosen, c.inner_default);  // one candidate: the config
      EXPECT_EQ(c.agreement_scale, o.config.agreement_scale);
      EXPECT_EQ(c.unweighted_share, o.config.unweighted_share);
      EXPECT_FALSE(c.adaptive_mix);
    }
  }

  // first_seed: seeds {0, 1} are the mean of seed 0 alone and seed 1 alone.
  o.seeds = 1;
  absl::StatusOr<FunctionEvaluationReport> first = RunFunctionEvaluation(table, o);
  o.first_seed = 1;
  absl::StatusOr<FunctionEvaluationReport> second = RunFunctionEvaluation(table, o);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->report.results.size(), r->report.results.size());
  int differ = 0;
  for (size_t i = 0; i < r->report.results.size(); ++i) {
    const double a = first->report.results[i].connected.mape;
    const double b = second->report.results[i].connected.mape;
    EXPECT_NEAR(r->report.results[i].connected.mape, (a + b) / 2, 1e-12);
    differ += a != b;
  }
  EXPECT_GT(differ, 0);
  // The scatter series (k = 10, the last method) come from the first seed run, whichever.
  EXPECT_EQ(first->report.scatter.size(), 6u);
  EXPECT_EQ(second->report.scatter.size(), 6u);
  o.seeds = 2;
  o.first_seed = 0;

  o.test_archs = {FbnetSpace::Get().Sample(1, 12345)[0]};
  EXPECT_FALSE(RunFunctionEvaluation(table, o).ok());  // not in the table
  o.test_archs.clear();
  o.arch_holdout = 0.2;
  r = RunFunctionEvaluation(table, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->scored_rows, 60);
  o.arch_holdout = 1.5;
  EXPECT_FALSE(RunFunctionEvaluation(table, o).ok());
}

}  // namespace
}  // namespace maplex::core

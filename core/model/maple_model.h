// MAPLE and MAPLE-X (research/MAPLE-X.md), as maplex implements them. Everything marked
// "ours" is this project's interpretation; docs/ACCURACY.md measures each part.
//
// The regressor (ours): ln L(a, d) = phi(a) . c(d), bilinear in an architecture encoding
// phi(a) and a device descriptor c(d):
//   phi(a) = [1, F_1(a) .. F_r(a)] — the r leading latent factors of the reference devices'
//            standardised log-latency matrix (an encoding of a learnt from all training
//            devices), optionally followed by analytic features (log FLOPs, parameters,
//            activations, op counts);
//   c(d)   = the device's loadings on those factors. A reference device's loadings come
//            from the factorisation; a target's are inferred from its descriptor: a prior
//            from the training devices (MAPLE: all alike; MAPLE-X: weighted by hardware
//            similarity), corrected by its k measured latencies with a Bayesian
//            (empirical-Bayes shrinkage) fit. Counters and specs enter through the
//            similarity; the k latencies through the fit (HELP's hardware embedding idea).
// MAPLE-X's two additions, each switchable:
//   virtual examples — each real sample (a_i, y_i) spawns neighbours a' (closest latency
//     profiles over the reference devices) labelled y_i times the latency ratio a'/a_i on
//     the reference devices most similar to the target; they enter the fit with less weight;
//   importance weights — reference device d weighs w(t, d) = RBF similarity of standardised
//     specs (and counters) times the agreement of d with the k target samples (affine fit
//     residual); the prior over c(t) is the w-weighted mean and spread of the references'.
// Every prediction carries a 90 % interval from the posterior variance plus the noise a new
// device leaves outside the factor space (estimated leaving each reference hardware out).
//
//   absl::StatusOr<std::unique_ptr<MapleContext>> ctx = MapleContext::Create(refs, {});
//   DeviceTable t = (*ctx)->Fit(target, Method::kMapleX);
#ifndef MAPLEX_CORE_MODEL_MAPLE_MODEL_H_
#define MAPLEX_CORE_MODEL_MAPLE_MODEL_H_

#include <Eigen/Dense>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/hardware/descriptor_features.h"
#include "core/model/reference_set.h"
#include "core/model/tabulated_model.h"

namespace maplex::core {

struct MapleConfig {
  int rank = 8;                    // latent factors (capped by the reference count)
  bool analytic_features = false;  // append log FLOPs/params/activations and op counts
  double analytic_prior_sd = 0.02;
  // Prior over a target's loadings: weighted spread of the references' loadings times
  // prior_scale, plus a share of the unweighted spread (so that a confident similarity
  // cannot rule out the rest), plus free scaling along the prior mean (sd beta_sd).
  double prior_scale = 1.0;
  double unweighted_share = 0.01;
  double beta_sd = 0.1;
  double intercept_sd = 10;  // the level is left to the samples
  // Prior sd of a curvature term (quadratic in the prior profile); 0 switches it off.
  double curvature_sd = 0;
  // Primitive count (ours): a term linear in the number of non-"none" edges of the cell —
  // each one a separately dispatched primitive whose fixed cost (kernel launch, framework
  // overhead) dominates small batch-1 workloads on some runtimes and which the references'
  // factors may not span. Zero-mean prior whose sd is chosen per target among
  // {0, 1/8, 1/4, 1/2, 1} x primitive_sd by the marginal likelihood of its real samples;
  // 0 switches it off. Virtual examples' labels carry the
  // per-primitive cost the real samples imply.
  double primitive_sd = 0.2;
  // Only sparse targets get it: at least primitive_min_samples (at k = 3 the evidence
  // over ~10 coefficients is noise: LOHO rho 0.948 -> 0.941) and at most
  // primitive_max_samples (at k = 20 LOHO +-10 % 0.860 -> 0.857; a CPU device with 200
  // samples fitted worse on held-out cells, Spearman 0.980 -> 0.971), as measured in
  // docs/ACCURACY.md. The term must beat "off" by primitive_min_log_evidence.
  int primitive_min_samples = 5;
  int primitive_max_samples = 16;
  double primitive_min_log_evidence = 0;
  // Op cost (ours, MAPLE-X only): a second, structural estimate of the target — latency in
  // ms as a fixed cost plus a cost per edge of each op type (5 coefficients), fitted to the
  // k real samples by least squares in relative error. On a CPU runtime that runs a cell's
  // ops one after another (oneDNN or Eigen at batch 1) it explains latency better than any
  // affine copy of the references; on most references it is worse. Per target, both are
  // scored by their leave-one-out log error on the k samples and blended in log space by
  // inverse mean squared error. From op_cost_min_samples samples on (0: off; at least 7,
  // two more than its coefficients, so that each leave-one-out fit is determined).
  int op_cost_min_samples = 7;
  // Importance weights: spec RBF bandwidth (in standardised units) and how sharply the
  // agreement with the k samples selects (per-sample rms log residual scale).
  double spec_bandwidth = 1.0;
  double agreement_scale = 0.08;
  // > 0: weigh agreement by the tempered profile likelihood RSS^(-power (k-2)/2) instead.
  double agreement_power = 0.5;
  // Virtual examples per real sample, their weight, and the reference devices that label.
  int virtual_per_sample = 8;
  double virtual_weight = 0.2;
  int virtual_label_devices = 3;
  int virtual_max_samples = 64;  // beyond this many real samples, none are spawned
  // The interval's noise variance: the references' out-of-factor noise, worth this many
  // observations, pooled with the residuals of the real samples.
  double noise_prior_samples = 3;
  // Share of the coefficients' posterior variance that enters the interval (calibrated on
  // the leave-one-hardware-out evaluation: the empirical prior is wider than the errors).
  double posterior_variance_scale = 0.3;
  // Multiplies the predictive sd (calibration of the 90 % interval).
  double interval_scale = 0.93;
};

// Overrides fields of `config` from "name=value,name=value" (names as in MapleConfig,
// e.g. "rank=10,virtual_weight=0.3"); InvalidArgument naming an unknown field or bad value.
absl::Status ApplyMapleConfigOverrides(std::string_view overrides, MapleConfig* config);

// A device's log cost per primitive beyond its factors, as its own samples imply it.
struct PrimitiveCost {
  double mean = 0;
  double sd = 0;  // posterior sd
};

// Per-target diagnostics of a fit (for tests and the evaluation write-up).
struct MapleFitInfo {
  std::vector<double> weights;  // normalised importance per reference device
  int virtual_examples = 0;
  double noise_sd = 0;
  double primitive_sd = 0;    // prior sd of the primitive-count term the evidence chose
  double primitive_mean = 0;  // its prior mean (0, or the same-hardware device's cost)
  double op_cost_share = 0;   // weight of the op-cost estimate in the blend (0: not used)
};

class MapleContext {
 public:
  // Factorises the reference matrix and precomputes what every target shares.
  // InvalidArgument for fewer than two reference devices.
  static absl::StatusOr<std::unique_ptr<MapleContext>> Create(const ReferenceSet& refs,
                                                              const MapleConfig& config);

  // Fits `device` from its samples (any number, including none) under one of the MAPLE
  // methods; `info` may be null. `same_hardware` (may be null): the cost per primitive of
  // a better-measured device on the same hardware (EstimatePrimitiveCost); the primitive
  // term's prior may then centre on it instead of 0, as the marginal likelihood decides.
  DeviceTable Fit(const DeviceData& device, Method method, MapleFitInfo* info = nullptr,
                  const PrimitiveCost* same_hardware = nullptr) const;

  // The cost per primitive `device`'s samples imply (prior sd primitive_sd, whatever their
  // number); nullopt with fewer than primitive_min_samples samples or primitive_sd 0.
  std::optional<PrimitiveCost> EstimatePrimitiveCost(const DeviceData& device, Method method) const;

  // Importance weights of the reference devices for `device` (normalised to sum 1).
  std::vector<double> ImportanceWeights(const EncodedDescriptor& target,
                                        const LogSamples& samples) const;
  // The same from k samples' AffineResidualVariances, when the caller has them already.
  std::vector<double> ImportanceWeights(const EncodedDescriptor& target, size_t k,
                                        const std::vector<double>& residual_variances) const;

  // Per reference device: residual variance (k - 2 degrees of freedom) of the affine fit
  // of the samples' log latencies on the device's; zeros when k < 3.
  std::vector<double> AffineResidualVariances(const LogSamples& samples) const;

  const MapleConfig& config() const { return config_; }

 private:
  // Fit; `estimate` (may be null) switches the primitive term on at sd primitive_sd for
  // any k >= primitive_min_samples and receives the posterior of its coefficient.
  DeviceTable FitImpl(const DeviceData& device, Method method, MapleFitInfo* info,
                      const PrimitiveCost* same_hardware, PrimitiveCost* estimate) const;

  explicit MapleContext(const ReferenceSet& refs) : refs_(refs) {}

  const ReferenceSet& refs_;
  MapleConfig config_;
  int rank_ = 0;
  Eigen::MatrixXd basis_;             // N x p: [1, F_1..F_r, analytic...]
  Eigen::MatrixXd loadings_;          // p x D: coefficients of each reference device
  Eigen::VectorXd residual_var_;      // D: residual variance leaving the device's hardware out
  Eigen::VectorXd primitive_counts_;  // N: centred non-"none" edge counts
  Eigen::MatrixXd op_counts_;         // N x 5: [1, edges of each op type but "none"]
  Eigen::MatrixXf profiles_;          // D x N: standardised log latencies (neighbour search)
  DescriptorEncoder encoder_;
  std::vector<EncodedDescriptor> encoded_;
  bool references_have_counters_ = false;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_MAPLE_MODEL_H_

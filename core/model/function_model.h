// Latency as a function of an architecture's structure (MAPLE-X.md, "Predicting architectures
// nobody measured"): phi(a) is a fixed per-space feature vector (intercept, one-hot choice per
// position, joint one-hot per interacting pair of positions), a device is a coefficient vector
// over phi, and a prediction is a dot product computed on demand, so any member of the space
// can be predicted, measured by someone or not.
//
//   FeatureMap phi(FbnetSpace::Get());
//   ReferenceFit ref = FitReference(phi, "gpu", archs, latencies_ms);       // many samples
//   FunctionFitter fitter(phi, references, pool);                          // once per fold
//   FunctionDevice target = fitter.Fit(Method::kMapleX, samples, descriptor, config);
//   FunctionModel model(phi, {target, ...});
//   model.Predict("my_board", archs, out);
//
// Everything here is deterministic and thread-compatible (const methods are thread-safe).
#ifndef MAPLEX_CORE_MODEL_FUNCTION_MODEL_H_
#define MAPLEX_CORE_MODEL_FUNCTION_MODEL_H_

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/arch/architecture_space.h"
#include "core/hardware/descriptor.h"
#include "core/hardware/descriptor_features.h"
#include "core/model/latency_model.h"

namespace maplex::core {

// phi(a) of one space. Every feature is an indicator, so phi(a) is the list of its active
// indices: 0 (intercept), one per position, one per interacting pair.
class FeatureMap {
 public:
  static constexpr int kMaxActive = 1 + Architecture::kMaxChoices + 64;

  explicit FeatureMap(const ArchitectureSpace& space);

  const ArchitectureSpace& space() const { return *space_; }
  int dim() const { return dim_; }
  int active_count() const { return 1 + static_cast<int>(offset_.size() + pairs_.size()); }
  // Writes active_count() indices to `out`; `a` must belong to space().
  void Active(const Architecture& a, int* out) const;
  // phi(a) . w without materializing phi (w.size() == dim()).
  double Dot(const Architecture& a, const double* w) const;

 private:
  const ArchitectureSpace* space_;
  std::vector<int> offset_;  // first index of each position's one-hot
  std::vector<std::pair<int, int>> pairs_;
  std::vector<int> pair_offset_;
  int dim_ = 0;
};

// Coefficients of one device. Prediction in ms:
//   (1 - mix) * phi(a).weights + mix * exp(alpha) * (phi(a).w_ref)^beta
// where w_ref is the weights of device `transfer_reference` of the same model (the baseline's
// log-linear transfer; mix = 1 is the pure baseline, mix = 0 the pure function). The 90 %
// interval is the prediction times exp(+-log_half_width).
struct FunctionDevice {
  std::string device;
  std::vector<double> weights;
  int transfer_reference = -1;  // index into the model's devices; -1: none (mix must be 0)
  double alpha = 0;
  double beta = 1;
  double mix = 0;
  double log_half_width = 0;
};

// A served model: plain parameters, size independent of the space's size.
struct FunctionModelParams {
  std::string space;  // registry name
  std::vector<FunctionDevice> devices;
};

// Compact binary form (little-endian doubles): ~8 bytes per coefficient, 1.6 KB per FBNet
// device, 3.3 KB per NB201 device. ParseFunctionModel: InvalidArgument for a truncated or
// inconsistent message (unknown space, wrong coefficient count, bad transfer index).
std::string SerializeFunctionModel(const FunctionModelParams& params);
absl::StatusOr<FunctionModelParams> ParseFunctionModel(std::string_view bytes);

class FunctionModel {
 public:
  // InvalidArgument for an unknown space, a coefficient vector of the wrong size, a transfer
  // reference out of range or a duplicated device.
  static absl::StatusOr<FunctionModel> Create(FunctionModelParams params);

  const FunctionModelParams& params() const { return params_; }
  const FeatureMap& features() const { return phi_; }
  // Index of `device` in params().devices, -1 if unknown.
  int DeviceIndex(std::string_view device) const;

  // out[i] = prediction for archs[i]; NotFound for an unknown device, InvalidArgument for an
  // architecture of another space or a size mismatch. Writes nothing on failure.
  absl::Status Predict(std::string_view device, absl::Span<const Architecture> archs,
                       absl::Span<LatencyPrediction> out) const;
  // The point prediction alone, no checks (device index valid, arch in the space).
  double PredictMs(int device, const Architecture& a) const;
  // The 90 % interval of device `device` (index valid) as factors of the prediction:
  // Predict's lower_ms is latency_ms * first and its upper_ms latency_ms * second, bit for bit.
  std::pair<double, double> IntervalFactors(int device) const;

 private:
  FunctionModel(FunctionModelParams params, FeatureMap phi);
  FunctionModelParams params_;
  FeatureMap phi_;
};

// A reference device fit on its own (many) samples: ridge regression of ms on phi.
struct ReferenceFit {
  std::string device;
  std::string hardware;
  HardwareDescriptor descriptor;
  std::vector<double> weights;
};
// `lambda`: ridge penalty (in squared-indicator units) on every coefficient but the intercept.
ReferenceFit FitReference(const FeatureMap& phi, std::string device, std::string hardware,
                          HardwareDescriptor descriptor, absl::Span<const Architecture> archs,
                          absl::Span<const double> latency_ms, double lambda = 1.0);

struct FunctionSample {
  Architecture arch;
  double latency_ms = 0;
};

struct FunctionConfig {
  int rank = 8;                // factors of the references' normalized coefficients
  double deviation_sd = 0.15;  // prior sd of the target's own deviation, per coefficient,
                               // relative to the rms coefficient of the prior mean
  double scale_sd = 0.3;       // prior sd along the prior mean (free level)
  double noise = 0.04;         // relative noise of a real sample
  // Nonzero (the MAPLE variants, k >= 4): the real samples' relative noise is chosen per
  // target among noise x {1/4, 1/2, 1, 2, 4} by the marginal likelihood of its k samples
  // under the prior (type-II maximum likelihood) instead of `noise` as is.
  int noise_ml = 0;
  // Importance weights (maple+w, maplex): spec RBF bandwidth, and how sharply agreement with
  // the k samples (rms log residual of the baseline transfer from that reference) selects.
  double spec_bandwidth = 1.0;
  double agreement_scale = 0.08;
  double unweighted_share = 0.2;  // of the unweighted spread kept in the weighted prior
  // How a reference's agreement with the k samples is measured (the error z in
  // exp(-z^2 dof / 2 scale^2)): 0 the in-sample rms log residual of its log-linear transfer
  // (dof = max(k - 2, 1)); 1 that transfer's leave-one-out rms (dof = k); 2 the
  // leave-one-out rms of its level alone (slope 1, the form the prior uses; dof = k).
  int agreement_mode = 0;
  // Share of uniform weight in the weights of the prior's deviation factors (the references'
  // spread around the importance-weighted mean): 0 the factors come from the importance-
  // weighted deviations alone, so sharp weights leave the samples few directions to move in;
  // 1 every reference's direction is available while the mean stays weighted.
  double factor_unweighted = 0;
  // Nonzero (k >= 3): each reference enters the prior with the slope beta of its log-linear
  // transfer to the k samples, to first order around its mean pool latency (normalized
  // coefficients u -> beta u + (1 - beta) e_0, which keeps the pool mean at 1), with beta
  // shrunk towards 1 by k / (k + transfer_shape) and clamped to [0.25, 2]. 0: slope 1.
  double transfer_shape = 0;
  // Nonzero (maple+w, maplex, k >= 4): the importance-weighted posterior competes with the
  // uniformly weighted one by the leave-one-out log error of the k samples under each
  // ([K^-1 r]_i / [K^-1]_ii); 1 keeps the better, 2 blends the two coefficient vectors by
  // inverse leave-one-out mean squared error, 3 is 1 and then (maplex only) the best
  // reference's log-linear transfer competes too (leave-one-out e_i / (1 - h_ii)); if it
  // wins, the target is the baseline.
  int loo_weighting = 0;
  // Virtual examples (maple+ve, maplex): pool members labelled by the baseline transfer of
  // the best-agreeing references, with their relative noise.
  int virtual_count = 32;
  int virtual_label_devices = 3;
  double virtual_noise = 0.08;
  int virtual_min_samples = 5;  // fewer real samples: no virtual examples
  // Share of the baseline blended into maplex's prediction.
  double baseline_mix = 0.5;
  int baseline_mix_min_samples = 5;
  // Nonzero (maplex, k >= 4): the blend share is baseline_mix times a share chosen per target
  // from its k samples: each sample's leave-one-out log error under the posterior and under
  // the best reference's transfer, weighted by inverse mean squared error (a target whose
  // samples the transfer explains better leans on it). Below 4 samples: baseline_mix as is.
  int adaptive_mix = 0;
  // The prior takes at most this many references, the ones whose baseline transfer agrees
  // best with the k samples (all of them without samples): a fit then costs the same with
  // 20 or 2,000 references (bench/function_trainer_benchmark.cc, fleet scaling).
  int max_prior_references = 24;
  // Nonzero (the MAPLE variants): the prior also lets the target move, with this sd, from the
  // prior mean towards the architecture's MACs (a function over phi fitted to the pool and
  // normalized as a reference is), so that a device no reference resembles can still follow
  // its FLOPs; the level stays free through scale_sd. Not the default: docs/ACCURACY.md.
  double macs_sd = 0;
};

// Parses "rank=8,noise=0.05,..." into `config` (InvalidArgument naming the unknown name).
absl::Status ApplyFunctionConfigOverrides(std::string_view text, FunctionConfig* config);

// Fits targets against one set of references (one fold). `pool`: seeded candidate
// architectures of the space (normalization and virtual examples).
class FunctionFitter {
 public:
  FunctionFitter(const FeatureMap& phi, std::vector<ReferenceFit> references,
                 std::vector<Architecture> pool);

  const std::vector<ReferenceFit>& references() const { return refs_; }

  // The target's coefficients under `method` (see Method): kBaseline is the best-fitting
  // reference's log-linear transfer; the MAPLE variants are the Bayesian fit with the
  // references' low-rank prior (+ weights, + virtual examples; maplex adds both and blends
  // with the baseline). Without samples (or references): the references' mean function.
  // transfer_reference indexes
  // references(); log_half_width is left 0 (see CalibrateHalfWidth).
  FunctionDevice Fit(Method method, absl::Span<const FunctionSample> samples,
                     const HardwareDescriptor& descriptor, const FunctionConfig& config) const;

  // A device without samples: the references' mean normalized function at their mean level
  // (geometric), both weighted by spec similarity to `descriptor` (maple+w, maplex; the
  // unweighted_share floor keeps every reference in) or unweighted (the other methods, or a
  // descriptor without spec fields).
  FunctionDevice FitPrior(Method method, const HardwareDescriptor& descriptor,
                          const FunctionConfig& config) const;

  // Point prediction of a fitted target (transfer_reference indexing references()).
  double PredictMs(const FunctionDevice& d, const Architecture& a) const;

 private:
  struct Transfer {
    double alpha = 0, beta = 1, rms = 0;
    double loo_rms = 0;        // leave-one-out rms log residual of the transfer
    double level_loo_rms = 0;  // the same for the level alone (beta = 1)
  };
  Transfer FitTransfer(int ref, absl::Span<const FunctionSample> samples) const;
  // The MACs as a normalized coefficient vector (FunctionConfig::macs_sd), fitted on first
  // use; empty without a pool of 2 or more, or when the space's MACs are 0.
  const std::vector<double>& Macs() const;

  const FeatureMap* phi_;
  std::vector<ReferenceFit> refs_;
  std::vector<Architecture> pool_;
  std::vector<std::vector<double>> normalized_;  // refs' weights / their mean pool latency
  std::vector<double> levels_;                   // that mean pool latency
  mutable std::once_flag macs_once_;             // Macs()
  mutable std::vector<double> macs_;
  DescriptorEncoder encoder_;
  std::vector<EncodedDescriptor> encoded_;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_FUNCTION_MODEL_H_

// Cross-validated accuracy of a device's predictions: the device's own measurements are
// split into folds; each fold is predicted by a fit that did not see it, and only those
// held-out predictions are scored. This is what the server reports per device
// (ModelInfo.device_accuracy, the maplex_model_device_cv_* metrics), instead of scoring a
// model on the measurements it was fit on (which it serves back as measured: always a
// perfect score).
//
//   CrossValidationOptions o;                      // 5 folds, at most 200 held out
//   absl::StatusOr<CrossValidation> cv = CrossValidate(samples, o,
//       [&](absl::Span<const LatencySample> training, absl::Span<const int32_t> held_out,
//           absl::Span<LatencyPrediction> out) { return FitAndPredict(training, held_out, out); });
//   double rho = cv->metrics.spearman;
//
//   // Every target device of a fleet, refit through ModelTrainer::Fit:
//   absl::StatusOr<std::vector<DeviceCrossValidation>> all =
//       CrossValidateDevices(devices, train, o);
//
// CrossValidate knows nothing of any model: the fit is a callback, so it holds for every
// LatencyModel behind ModelTrainer::Fit.
#ifndef MAPLEX_CORE_EVAL_CROSS_VALIDATION_H_
#define MAPLEX_CORE_EVAL_CROSS_VALIDATION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/eval/metrics.h"
#include "core/model/latency_model.h"

namespace maplex::core {

struct CrossValidationOptions {
  // k of k-fold. A device with no more samples than this is scored leave-one-out (as many
  // folds as held-out samples), so every fold keeps all but one sample to fit on.
  int folds = 5;
  // At most this many samples are held out and scored (a random subset, fixed by `seed`);
  // the others are fit on in every fold. Bounds the cost of a device with many samples:
  // at most `folds` refits per device, and the metrics of 200 predictions are stable to a
  // few hundredths.
  int max_scored_samples = 200;
  // Fewer samples than this: not scored (a Spearman rho of two points says nothing).
  int min_samples = 3;
  uint64_t seed = 1;
};

// Fits on `training` and writes the prediction for held_out[i] to out[i] (same sizes).
// The fit must not see the held-out latencies; an error aborts the cross-validation.
using FoldFitter = std::function<absl::Status(absl::Span<const LatencySample> training,
                                              absl::Span<const int32_t> held_out,
                                              absl::Span<LatencyPrediction> out)>;

struct HeldOutPrediction {
  LatencySample measured;
  LatencyPrediction predicted;  // by a fit without `measured`
};

struct CrossValidation {
  int folds = 0;                            // fits made
  std::vector<HeldOutPrediction> held_out;  // every scored sample once, in arch order
  AccuracyMetrics metrics;                  // of held_out
};

// Splits `samples` (at most one per arch) into options.folds folds (leave-one-out when
// there are no more samples than folds), calls `fit` once per fold with every other sample,
// and scores the held-out predictions. Deterministic in (samples, options). InvalidArgument
// for options.folds < 2 or max_scored_samples < 2; FailedPrecondition with fewer than
// options.min_samples samples; otherwise the first error `fit` returns.
absl::StatusOr<CrossValidation> CrossValidate(absl::Span<const LatencySample> samples,
                                              const CrossValidationOptions& options,
                                              const FoldFitter& fit);

// The cross-validated accuracy of one device of a fleet.
struct DeviceCrossValidation {
  std::string device;
  int samples = 0;
  bool reference = false;
  // Set when scored; otherwise `not_scored` says why.
  std::optional<CrossValidation> cv;
  std::string not_scored;
};

// Cross-validates every device of `devices` with samples under train.method, the way
// TrainLatencyModel fits it: a target's adaptation is refit through ModelTrainer::Fit
// (same references, same same-hardware evidence) on a copy of the device holding the other
// folds. Reference devices (coverage >= train.reference_min_coverage) are not scored:
// their measurements are columns of the reference set every fit reads, so no refit can
// hold them out short of rebuilding the set, and the served model answers them with those
// measurements anyway. `only` non-empty: just those device ids. Errors as
// TrainLatencyModel's; a device whose refit fails is returned unscored, with the error in
// `not_scored`.
absl::StatusOr<std::vector<DeviceCrossValidation>> CrossValidateDevices(
    const std::vector<DeviceData>& devices, const TrainOptions& train,
    const CrossValidationOptions& options, const std::vector<std::string>& only = {});

}  // namespace maplex::core

#endif  // MAPLEX_CORE_EVAL_CROSS_VALIDATION_H_

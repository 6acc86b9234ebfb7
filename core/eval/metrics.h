// Accuracy metrics of latency predictions against measurements (MAPLE-X.md, "Evaluation
// protocol"): Spearman rank correlation (HELP's metric), share within +-5 % / +-10 %
// (nn-Meter's and LitePred's), mean absolute percentage error, and the coverage of the
// nominal 90 % intervals.
//
//   AccuracyMetrics m = ComputeAccuracy(predictions, measured_ms);
#ifndef MAPLEX_CORE_EVAL_METRICS_H_
#define MAPLEX_CORE_EVAL_METRICS_H_

#include <vector>

#include "absl/types/span.h"
#include "core/model/latency_model.h"

namespace maplex::core {

// Ranks 1..n, ties getting the mean of the ranks they span.
std::vector<double> AverageRanks(absl::Span<const double> values);

// Spearman's rho: Pearson correlation of the average ranks (correct with ties). 0 when
// either side is constant or fewer than two values are given. Sizes must match.
double SpearmanRho(absl::Span<const double> a, absl::Span<const double> b);

// Share of i with |predicted - measured| / measured <= tolerance (0.05 for +-5 %).
double ShareWithin(absl::Span<const double> predicted, absl::Span<const double> measured,
                   double tolerance);

// Mean of |predicted - measured| / measured, as a fraction (0.1 = 10 %).
double MeanAbsolutePercentageError(absl::Span<const double> predicted,
                                   absl::Span<const double> measured);

struct AccuracyMetrics {
  int count = 0;
  double spearman = 0;
  double acc5 = 0;
  double acc10 = 0;
  double mape = 0;
  double coverage90 = 0;  // share of measurements inside [lower_ms, upper_ms]
};

// All metrics at once; predictions[i] belongs to measured_ms[i]. Empty input -> zeros.
AccuracyMetrics ComputeAccuracy(absl::Span<const LatencyPrediction> predictions,
                                absl::Span<const double> measured_ms);

// For means over seeds and devices: adds every field of `m` to `sum`, and divides every field
// by `n` (count too, rounding down; n = 0 leaves `m` as it is).
void AccumulateAccuracy(const AccuracyMetrics& m, AccuracyMetrics* sum);
AccuracyMetrics DivideAccuracy(AccuracyMetrics m, int n);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_EVAL_METRICS_H_

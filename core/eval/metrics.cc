#include "core/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace maplex::core {

std::vector<double> AverageRanks(absl::Span<const double> values) {
  const size_t n = values.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t i, size_t j) { return values[i] < values[j]; });
  std::vector<double> ranks(n);
  for (size_t start = 0; start < n;) {
    size_t end = start + 1;
    while (end < n && values[order[end]] == values[order[start]]) ++end;
    // Positions start..end-1 hold ranks start+1..end; their mean is (start + 1 + end) / 2.
    const double rank = 0.5 * static_cast<double>(start + 1 + end);
    for (size_t p = start; p < end; ++p) ranks[order[p]] = rank;
    start = end;
  }
  return ranks;
}

double SpearmanRho(absl::Span<const double> a, absl::Span<const double> b) {
  const size_t n = a.size();
  if (n < 2 || b.size() != n) return 0;
  const std::vector<double> ra = AverageRanks(a);
  const std::vector<double> rb = AverageRanks(b);
  const double mean = 0.5 * static_cast<double>(n + 1);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) * (ra[i] - mean);
    sbb += (rb[i] - mean) * (rb[i] - mean);
  }
  if (saa <= 0 || sbb <= 0) return 0;
  return sab / std::sqrt(saa * sbb);
}

double ShareWithin(absl::Span<const double> predicted, absl::Span<const double> measured,
                   double tolerance) {
  if (measured.empty()) return 0;
  size_t within = 0;
  for (size_t i = 0; i < measured.size(); ++i) {
    // A hair of slack so that "exactly 10 % off" counts despite rounding.
    if (std::abs(predicted[i] - measured[i]) <= tolerance * measured[i] * (1 + 1e-12)) ++within;
  }
  return static_cast<double>(within) / static_cast<double>(measured.size());
}

double MeanAbsolutePercentageError(absl::Span<const double> predicted,
                                   absl::Span<const double> measured) {
  if (measured.empty()) return 0;
  double sum = 0;
  for (size_t i = 0; i < measured.size(); ++i) {
    sum += std::abs(predicted[i] - measured[i]) / measured[i];
  }
  return sum / static_cast<double>(measured.size());
}

AccuracyMetrics ComputeAccuracy(absl::Span<const LatencyPrediction> predictions,
                                absl::Span<const double> measured_ms) {
  AccuracyMetrics m;
  if (measured_ms.empty()) return m;
  std::vector<double> point(predictions.size());
  size_t covered = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    point[i] = predictions[i].latency_ms;
    if (predictions[i].lower_ms <= measured_ms[i] && measured_ms[i] <= predictions[i].upper_ms) {
      ++covered;
    }
  }
  m.count = static_cast<int>(measured_ms.size());
  m.spearman = SpearmanRho(point, measured_ms);
  m.acc5 = ShareWithin(point, measured_ms, 0.05);
  m.acc10 = ShareWithin(point, measured_ms, 0.10);
  m.mape = MeanAbsolutePercentageError(point, measured_ms);
  m.coverage90 = static_cast<double>(covered) / static_cast<double>(measured_ms.size());
  return m;
}

void AccumulateAccuracy(const AccuracyMetrics& m, AccuracyMetrics* sum) {
  sum->count += m.count;
  sum->spearman += m.spearman;
  sum->acc5 += m.acc5;
  sum->acc10 += m.acc10;
  sum->mape += m.mape;
  sum->coverage90 += m.coverage90;
}

AccuracyMetrics DivideAccuracy(AccuracyMetrics m, int n) {
  if (n == 0) return m;
  m.count /= n;
  m.spearman /= n;
  m.acc5 /= n;
  m.acc10 /= n;
  m.mape /= n;
  m.coverage90 /= n;
  return m;
}

}  // namespace maplex::core

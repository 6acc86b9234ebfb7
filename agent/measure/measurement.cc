#include "agent/measure/measurement.h"

#include <algorithm>
#include <cmath>

namespace maplex::agent {
namespace {

// Quantile q of sorted values, interpolating linearly between order statistics.
double Quantile(const std::vector<double>& sorted, double q) {
  const double position = q * (sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

}  // namespace

LatencyStats ComputeLatencyStats(const std::vector<double>& samples_ms) {
  LatencyStats stats;
  const size_t n = samples_ms.size();
  if (n == 0) return stats;
  std::vector<double> sorted = samples_ms;
  std::sort(sorted.begin(), sorted.end());
  stats.repeats = static_cast<int>(n);
  stats.median_ms = Quantile(sorted, 0.5);
  stats.p10_ms = Quantile(sorted, 0.1);
  stats.p90_ms = Quantile(sorted, 0.9);
  stats.min_ms = sorted.front();
  stats.max_ms = sorted.back();
  double sum = 0;
  for (double x : sorted) sum += x;
  stats.mean_ms = sum / n;
  if (n > 1) {
    double squares = 0;
    for (double x : sorted) squares += (x - stats.mean_ms) * (x - stats.mean_ms);
    stats.stddev_ms = std::sqrt(squares / (n - 1));
  }
  if (stats.mean_ms > 0) stats.cv = stats.stddev_ms / stats.mean_ms;
  if (stats.median_ms > 0) {
    stats.median_cv = 1.2533 * stats.stddev_ms / (std::sqrt(double(n)) * stats.median_ms);
  }
  return stats;
}

}  // namespace maplex::agent

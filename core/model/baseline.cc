#include "core/model/baseline.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace maplex::core {
namespace {

// Prior on the residual spread (ours): one pseudo-observation of a 10 % log error, so that
// three samples that happen to lie on a line do not claim a zero-width interval.
constexpr double kPriorDof = 1.0;
constexpr double kPriorLogSd = 0.10;
// Without any sample the level is unknown: +-e^2 (x7.4).
constexpr double kNoSampleHalfWidth = 2.0;

}  // namespace

double StudentT95(double dof) {
  // Upper 0.95 quantiles of Student's t.
  static constexpr double kDof[] = {1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120};
  static constexpr double kT[] = {6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.860,
                                  1.812, 1.753, 1.725, 1.697, 1.671, 1.658};
  if (dof <= kDof[0]) return kT[0];
  for (int i = 1; i < 13; ++i) {
    if (dof <= kDof[i]) {
      const double f = (dof - kDof[i - 1]) / (kDof[i] - kDof[i - 1]);
      return kT[i - 1] + f * (kT[i] - kT[i - 1]);
    }
  }
  return 1.6448536269514722;
}

BaselineFit FitBaseline(const ReferenceSet& refs, const LogSamples& samples) {
  const size_t k = samples.archs.size();
  BaselineFit best;
  best.residual_rss = std::numeric_limits<double>::infinity();
  if (k == 0) {
    best.residual_rss = 0;
    best.log_half_width = kNoSampleHalfWidth;
    return best;
  }
  for (int d = 0; d < refs.size(); ++d) {
    const AffineFit fit = FitAffineToDevice(refs, d, samples);
    if (fit.rss < best.residual_rss) {
      best.reference = d;
      best.alpha = fit.alpha;
      best.beta = fit.beta;
      best.residual_rss = fit.rss;
    }
  }
  const double n = static_cast<double>(k);
  const double params = k >= 2 ? 2 : 1;
  const double dof = std::max(n - params, 0.0) + kPriorDof;
  const double s2 = (best.residual_rss + kPriorDof * kPriorLogSd * kPriorLogSd) / dof;
  best.log_half_width = StudentT95(dof) * std::sqrt(s2 * (1 + params / n));
  return best;
}

DeviceTable BaselineTable(const ReferenceSet& refs, const BaselineFit& fit,
                          const DeviceData& device) {
  DeviceTable t;
  t.device = device.device;
  t.hardware = device.hardware.empty() ? device.device : device.hardware;
  t.use.measured_latencies = !device.samples.empty();
  t.sample_count = static_cast<int>(device.samples.size());
  t.fit = absl::StrCat("log y = ", fit.alpha, " + ", fit.beta, " * log L(",
                       refs.devices[fit.reference], "); rss ", fit.residual_rss);
  const Eigen::Index n = refs.log_latency.rows();
  t.log_latency.resize(n);
  t.log_half_width.assign(n, fit.log_half_width);
  for (Eigen::Index a = 0; a < n; ++a) {
    t.log_latency[a] = fit.alpha + fit.beta * refs.log_latency(a, fit.reference);
  }
  return t;
}

}  // namespace maplex::core

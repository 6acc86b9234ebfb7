#include "core/planning/measurement_planner.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "Eigen/Dense"
#include "Eigen/SVD"
#include "absl/strings/str_cat.h"

namespace maplex::core {

absl::StatusOr<MeasurementPlanner> MeasurementPlanner::Build(const std::vector<DeviceData>& devices,
                                                             const Nb201Space& space,
                                                             int factors, int primitive_from) {
  const int n = space.size();
  std::vector<const DeviceData*> complete;
  for (const DeviceData& d : devices) {
    if (static_cast<int>(d.samples.size()) >= n) complete.push_back(&d);
  }
  if (complete.empty()) {
    return absl::InvalidArgumentError("no device covers the whole architecture space");
  }
  // Columns: devices' log-latencies, centred and scaled per device.
  Eigen::MatrixXd y = Eigen::MatrixXd::Zero(n, static_cast<Eigen::Index>(complete.size()));
  for (size_t j = 0; j < complete.size(); ++j) {
    std::vector<bool> seen(n, false);
    for (const LatencySample& s : complete[j]->samples) {
      if (s.arch_index < 0 || s.arch_index >= n || !(s.latency_ms > 0)) continue;
      y(s.arch_index, j) = std::log(s.latency_ms);
      seen[s.arch_index] = true;
    }
    if (std::count(seen.begin(), seen.end(), true) < n) {
      return absl::InvalidArgumentError(
          absl::StrCat("device ", complete[j]->device, " does not cover every architecture"));
    }
    y.col(j).array() -= y.col(j).mean();
    double norm = y.col(j).norm();
    if (norm > 0) y.col(j) /= norm;
  }
  Eigen::BDCSVD<Eigen::MatrixXd> svd(y, Eigen::ComputeThinU);
  const int r = std::min<int>(factors, static_cast<int>(svd.singularValues().size()));
  Eigen::MatrixXd coordinates(n, r + 2);
  coordinates.col(0).setOnes();
  // U scaled to unit variance per factor, so that every direction counts alike.
  for (int k = 0; k < r; ++k) {
    coordinates.col(k + 1) = svd.matrixU().col(k) * std::sqrt(static_cast<double>(n));
  }
  // The primitive count, centred and scaled alike: the model fits a per-target cost per
  // primitive that the references may not show (MapleConfig::primitive_sd), so the design
  // must also spread over it. Without it the first picks are the factors' extremes, almost
  // all with 4-6 primitives, and leave that term to the prior (docs/ACCURACY.md,
  // "Onboarding"). It enters from the primitive_from-th sample on, when the model starts
  // fitting the term: earlier, a pick spent on it is lost (planned LOHO, k = 3: +-10 %
  // 0.645 -> 0.577 with it from the first pick).
  Eigen::VectorXd primitives(n);
  for (int a = 0; a < n; ++a) primitives(a) = space.PrimitiveCount(a);
  primitives.array() -= primitives.mean();
  const double sd = std::sqrt(primitives.squaredNorm() / n);
  if (sd > 0) primitives /= sd;
  coordinates.col(r + 1) = primitives;
  std::vector<bool> eligible(n);
  for (int a = 0; a < n; ++a) eligible[a] = space.IsOutputConnected(a);
  return MeasurementPlanner(std::move(coordinates), std::move(eligible), primitive_from);
}

std::vector<int32_t> MeasurementPlanner::Next(absl::Span<const int32_t> measured, int count) const {
  return Pick(measured, count, eligible_);
}

std::vector<int32_t> MeasurementPlanner::Next(absl::Span<const int32_t> measured, int count,
                                              absl::Span<const int32_t> candidates) const {
  std::vector<bool> eligible(eligible_.size(), false);
  for (int32_t a : candidates) {
    if (a >= 0 && a < static_cast<int32_t>(eligible.size())) eligible[a] = eligible_[a];
  }
  return Pick(measured, count, eligible);
}

std::vector<int32_t> MeasurementPlanner::Pick(absl::Span<const int32_t> measured, int count,
                                              const std::vector<bool>& eligible) const {
  const int n = static_cast<int>(coordinates_.rows());
  const int p = static_cast<int>(coordinates_.cols());
  // Information so far, with a small ridge so that M is invertible before p picks.
  Eigen::MatrixXd info = 1e-3 * Eigen::MatrixXd::Identity(p, p);
  std::vector<bool> taken(n, false);
  for (int32_t a : measured) {
    if (a < 0 || a >= n || taken[a]) continue;
    taken[a] = true;
    info.noalias() += coordinates_.row(a).transpose() * coordinates_.row(a);
  }
  const int already = static_cast<int>(std::count(taken.begin(), taken.end(), true));
  std::vector<int32_t> picks;
  for (int i = 0; i < count; ++i) {
    // Leverage of every candidate, x^T M^-1 x, over the coordinates the model fits once
    // this sample is in (the primitive count, the last one, only from primitive_from_ on).
    const int q = already + i + 1 >= primitive_from_ ? p : p - 1;
    const Eigen::MatrixXd inverse = info.topLeftCorner(q, q).inverse();
    const auto x = coordinates_.leftCols(q);
    Eigen::VectorXd leverage = ((x * inverse).cwiseProduct(x)).rowwise().sum();
    int best = -1;
    for (int a = 0; a < n; ++a) {
      if (taken[a] || !eligible[a]) continue;
      if (best < 0 || leverage(a) > leverage(best)) best = a;
    }
    if (best < 0) break;
    taken[best] = true;
    picks.push_back(best);
    info.noalias() += coordinates_.row(best).transpose() * coordinates_.row(best);
  }
  return picks;
}

std::vector<int32_t> DiverseArchitectures(const Nb201Space& space, int count) {
  std::vector<int32_t> connected;
  for (int32_t a = 0; a < space.size(); ++a) {
    if (space.IsOutputConnected(a)) connected.push_back(a);
  }
  // Sort by compute (ties by index, so the order is deterministic) and take evenly spaced
  // quantiles: cheap, middling and heavy cells all get measured.
  std::vector<int64_t> macs(space.size());
  for (int32_t a : connected) macs[a] = space.Cost(a).macs;
  std::sort(connected.begin(), connected.end(),
            [&](int32_t x, int32_t y) { return macs[x] != macs[y] ? macs[x] < macs[y] : x < y; });
  std::vector<int32_t> out;
  if (connected.empty() || count <= 0) return out;
  count = std::min<int>(count, static_cast<int>(connected.size()));
  for (int i = 0; i < count; ++i) {
    size_t at = count == 1 ? connected.size() / 2
                           : static_cast<size_t>(i) * (connected.size() - 1) / (count - 1);
    out.push_back(connected[at]);
  }
  return out;
}

}  // namespace maplex::core

#include "core/planning/function_planner.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "Eigen/Dense"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/arch/space_registry.h"

namespace maplex::core {
namespace {

uint64_t RequestSeed(std::string_view device, uint64_t seed) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: portable, unlike std::hash
  for (unsigned char c : device) h = (h ^ c) * 1099511628211ull;
  uint64_t state = h ^ (seed * 0x9E3779B97F4A7C15ull);
  return SplitMix64(state);
}

}  // namespace

absl::StatusOr<FunctionPlanner> FunctionPlanner::Build(const TrainedFunctionModel& model,
                                                       std::vector<Architecture> reference_measured,
                                                       FunctionPlannerOptions options) {
  const ArchitectureSpace* space = FindSpace(model.params.space);
  if (space == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("planner: unknown space \"", model.params.space, "\""));
  }
  std::vector<std::vector<double>> refs;
  for (size_t i = 0; i < model.params.devices.size() && i < model.summaries.size(); ++i) {
    if (model.summaries[i].reference) refs.push_back(model.params.devices[i].weights);
  }
  return Build(*space, refs, std::move(reference_measured), options);
}

absl::StatusOr<FunctionPlanner> FunctionPlanner::Build(
    const ArchitectureSpace& space, const std::vector<std::vector<double>>& references,
    std::vector<Architecture> reference_measured, FunctionPlannerOptions options) {
  FunctionPlanner planner(space, FeatureMap(space));
  planner.options_ = options;
  const int p = planner.phi_.dim();
  for (size_t i = 0; i < references.size(); ++i) {
    if (static_cast<int>(references[i].size()) != p) {
      return absl::InvalidArgumentError(absl::StrCat("planner: reference ", i, " has ",
                                                     references[i].size(), " coefficients, ",
                                                     std::string(space.name()), " needs ", p));
    }
  }
  // The references' own candidates: this space's, connected, distinct, in a fixed order.
  std::vector<Architecture> measured;
  for (const Architecture& a : reference_measured) {
    if (a.space() == &space && space.IsOutputConnected(a)) measured.push_back(a);
  }
  std::sort(measured.begin(), measured.end());
  measured.erase(std::unique(measured.begin(), measured.end()), measured.end());
  planner.reference_measured_ = std::move(measured);

  const int n = static_cast<int>(references.size());
  planner.reference_count_ = n;
  if (n == 0) return planner;
  // Normalized coefficients (each reference over its mean latency on a fixed pool), their
  // mean and top deviation factors, as FunctionFitter builds its prior.
  const std::vector<Architecture> pool = space.Sample(std::max(options.level_pool, 1), 7);
  Eigen::MatrixXd u(p, n);
  for (int d = 0; d < n; ++d) {
    double level = 0;
    for (const Architecture& a : pool) level += planner.phi_.Dot(a, references[d].data());
    level = std::max(level / pool.size(), 1e-9);
    u.col(d) = Eigen::Map<const Eigen::VectorXd>(references[d].data(), p) / level;
  }
  planner.mean_ = u.rowwise().mean();
  const Eigen::MatrixXd dev = (u.colwise() - planner.mean_) / std::sqrt(static_cast<double>(n));
  const int rank = std::min({options.rank, n, p});
  planner.basis_.resize(p, rank + 1);
  planner.basis_.col(0) = options.scale_sd * planner.mean_;
  if (rank > 0) {
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(dev, Eigen::ComputeThinU);
    planner.basis_.rightCols(rank) =
        svd.matrixU().leftCols(rank) * svd.singularValues().head(rank).asDiagonal();
  }
  return planner;
}

void FunctionPlanner::Design(const Architecture& a, double* out) const {
  const int q = static_cast<int>(basis_.cols());
  int active[FeatureMap::kMaxActive];
  phi_.Active(a, active);
  const int n = phi_.active_count();
  double level = 0;
  for (int j = 0; j < q; ++j) out[j] = 0;
  for (int i = 0; i < n; ++i) {
    level += mean_(active[i]);
    for (int j = 0; j < q; ++j) out[j] += basis_(active[i], j);
  }
  const double scale = 1.0 / (options_.noise * std::max(level, 1e-9));
  for (int j = 0; j < q; ++j) out[j] *= scale;
}

double FunctionPlanner::PosteriorLogDet(absl::Span<const Architecture> archs) const {
  if (reference_count_ == 0) return 0;
  const int q = static_cast<int>(basis_.cols());
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(q, q);
  Eigen::VectorXd x(q);
  for (const Architecture& a : archs) {
    if (a.space() != space_) continue;
    Design(a, x.data());
    m.noalias() += x * x.transpose();
  }
  const Eigen::LLT<Eigen::MatrixXd> llt(m);
  return 2 * llt.matrixLLT().diagonal().array().log().sum();
}

FunctionPlan FunctionPlanner::Next(std::string_view device, absl::Span<const Architecture> measured,
                                   int count, uint64_t seed) const {
  const uint64_t s = RequestSeed(device, seed);
  std::vector<Architecture> candidates = space_->Sample(std::max(options_.random_candidates, 0), s);
  const int random = static_cast<int>(candidates.size());
  // A seeded subset of the references' architectures (partial Fisher-Yates on indices).
  const int n_ref = static_cast<int>(reference_measured_.size());
  const int take = std::min(n_ref, std::max(options_.reference_candidates, 0));
  std::vector<int> idx(n_ref);
  for (int i = 0; i < n_ref; ++i) idx[i] = i;
  uint64_t state = s ^ 0x5851F42D4C957F2Dull;
  for (int i = 0; i < take; ++i) {
    const int j = i + static_cast<int>(SplitMix64(state) % static_cast<uint64_t>(n_ref - i));
    std::swap(idx[i], idx[j]);
    candidates.push_back(reference_measured_[idx[i]]);
  }
  return Pick(measured, count, std::move(candidates),
              absl::StrCat(random, " sampled + ", take, " measured by references"));
}

FunctionPlan FunctionPlanner::Next(absl::Span<const Architecture> measured, int count,
                                   absl::Span<const Architecture> candidates) const {
  return Pick(measured, count, std::vector<Architecture>(candidates.begin(), candidates.end()),
              "given");
}

FunctionPlan FunctionPlanner::Pick(absl::Span<const Architecture> measured, int count,
                                   std::vector<Architecture> candidates, std::string source) const {
  FunctionPlan plan;
  absl::flat_hash_set<Architecture> excluded;
  for (const Architecture& a : measured) excluded.insert(a);
  std::vector<Architecture> eligible;
  for (const Architecture& a : candidates) {
    if (a.space() != space_ || !space_->IsOutputConnected(a)) continue;
    if (excluded.insert(a).second) eligible.push_back(a);  // also drops repeats
  }
  const int c = static_cast<int>(eligible.size());
  count = std::max(0, std::min(count, c));
  const std::string space_name(space_->name());

  if (reference_count_ == 0) {
    // No prior to be informative about: spread over analytic cost.
    std::vector<std::pair<int64_t, int>> by_cost(c);
    for (int i = 0; i < c; ++i) by_cost[i] = {space_->Cost(eligible[i]).macs, i};
    std::sort(by_cost.begin(), by_cost.end());
    for (int i = 0; i < count; ++i) {
      const int at =
          count == 1 ? c / 2 : static_cast<int>((static_cast<int64_t>(i) * (c - 1)) / (count - 1));
      plan.archs.push_back(eligible[by_cost[at].second]);
    }
    plan.strategy = absl::StrCat("diverse-compute: no reference device in ", space_name,
                                 ", spread over the MACs of ", c, " candidates (", source, ")");
    return plan;
  }

  const int q = static_cast<int>(basis_.cols());
  Eigen::MatrixXd minv = Eigen::MatrixXd::Identity(q, q);
  Eigen::VectorXd x(q);
  auto add = [&](const Eigen::VectorXd& v) {  // Sherman-Morrison: (M + v v^T)^-1
    const Eigen::VectorXd mv = minv * v;
    minv.noalias() -= (mv * mv.transpose()) / (1 + v.dot(mv));
  };
  int prior_measured = 0;
  for (const Architecture& a : measured) {
    if (a.space() != space_) continue;
    Design(a, x.data());
    add(x);
    ++prior_measured;
  }
  Eigen::MatrixXd design(c, q);  // one row per candidate
  for (int i = 0; i < c; ++i) {
    Design(eligible[i], x.data());
    design.row(i) = x.transpose();
  }
  std::vector<bool> taken(c, false);
  double gain = 0;
  for (int step = 0; step < count; ++step) {
    // Leverage of every candidate: rows of (design * minv) dotted with design's rows.
    const Eigen::VectorXd leverage = (design * minv).cwiseProduct(design).rowwise().sum();
    int best = -1;
    for (int i = 0; i < c; ++i) {
      if (!taken[i] && (best < 0 || leverage(i) > leverage(best))) best = i;
    }
    taken[best] = true;
    gain += std::log1p(leverage(best));
    plan.archs.push_back(eligible[best]);
    add(design.row(best).transpose());
  }
  plan.strategy =
      absl::StrCat("d-optimal: posterior log-det over ", q, " prior coordinates of ",
                   reference_count_, " references (+", absl::StrFormat("%.2f", gain), " after ",
                   prior_measured, " measured), ", c, " candidates (", source, ")");
  return plan;
}

}  // namespace maplex::core

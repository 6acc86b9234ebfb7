// NextTasks for a space served by a function model (core/model/function_trainer.h), e.g.
// FBNet's 9^22 networks: which architectures a device should measure next. Ours, not from the
// MAPLE papers, and the function-model counterpart of measurement_planner.h.
//
// The target's coefficients are, under the function model's prior, the references' mean
// normalized function at a free level plus a combination of their top `rank` deviation
// factors (FunctionFitter's prior without its small per-coefficient term). An architecture a
// is then a design vector x(a) = [scale_sd * phi(a).m, phi(a).L] / (noise * phi(a).m) in those
// rank + 1 whitened coordinates, and measuring it adds x x^T to the posterior precision
// I + sum x x^T. Next() picks greedily the candidate with the largest x^T M^-1 x (the largest
// gain of the posterior log-det: D-optimal), with rank-1 (Sherman-Morrison) updates of M^-1,
// starting from what the device measured already. Candidates: seeded random members of the
// space (ArchitectureSpace::Sample) plus a seeded subset of what the references measured;
// never one the device measured, never twice, never an output-disconnected one.
// With no reference device, the candidates are spread evenly over analytic cost (MACs).
//
//   absl::StatusOr<FunctionPlanner> planner = FunctionPlanner::Build(trained, ref_measured);
//   FunctionPlan plan = planner->Next("my_board", measured, /*count=*/10, /*seed=*/1);
//
// Deterministic in (device, seed); const methods are thread-safe.
#ifndef MAPLEX_CORE_PLANNING_FUNCTION_PLANNER_H_
#define MAPLEX_CORE_PLANNING_FUNCTION_PLANNER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/arch/architecture_space.h"
#include "core/model/function_model.h"
#include "core/model/function_trainer.h"

namespace maplex::core {

struct FunctionPlannerOptions {
  int random_candidates = 2048;     // sampled members of the space per request
  int reference_candidates = 1024;  // at most this many of the references' architectures
  int rank = 8;                     // prior deviation factors (FunctionConfig::rank)
  double scale_sd = 0.3;            // FunctionConfig::scale_sd
  double noise = 0.04;              // FunctionConfig::noise (relative)
  int level_pool = 256;             // sampled members the references' levels are taken over
};

struct FunctionPlan {
  std::vector<Architecture> archs;  // most informative first
  std::string strategy;             // "d-optimal ..." or "diverse-compute ..."
};

class FunctionPlanner {
 public:
  // From the served model's references (summaries[i].reference) and the architectures the
  // references measured (candidates; any order, duplicates and other spaces' dropped).
  // InvalidArgument for an unknown space or a coefficient vector of the wrong size. Without
  // references the planner still answers (diverse-compute).
  static absl::StatusOr<FunctionPlanner> Build(const TrainedFunctionModel& model,
                                               std::vector<Architecture> reference_measured,
                                               FunctionPlannerOptions options = {});
  // The same from the references' coefficient vectors directly.
  static absl::StatusOr<FunctionPlanner> Build(const ArchitectureSpace& space,
                                               const std::vector<std::vector<double>>& references,
                                               std::vector<Architecture> reference_measured,
                                               FunctionPlannerOptions options = {});

  const ArchitectureSpace& space() const { return *space_; }
  int reference_count() const { return reference_count_; }

  // Up to `count` architectures for `device` to measure next (see above). Architectures of
  // another space in `measured` are ignored.
  FunctionPlan Next(std::string_view device, absl::Span<const Architecture> measured, int count,
                    uint64_t seed) const;
  // The same, choosing only among `candidates` (e.g. the rows an offline study has ground
  // truth for); measured, repeated, disconnected or other spaces' candidates are skipped.
  FunctionPlan Next(absl::Span<const Architecture> measured, int count,
                    absl::Span<const Architecture> candidates) const;

  // log det of the posterior precision I + sum x(a) x(a)^T after measuring `archs` (0 without
  // references): the planner's criterion, for tests and comparisons.
  double PosteriorLogDet(absl::Span<const Architecture> archs) const;

 private:
  FunctionPlanner(const ArchitectureSpace& space, FeatureMap phi)
      : space_(&space), phi_(std::move(phi)) {}
  // Whitened design vector of `a` (rank + 1 entries).
  void Design(const Architecture& a, double* out) const;
  FunctionPlan Pick(absl::Span<const Architecture> measured, int count,
                    std::vector<Architecture> candidates, std::string source) const;

  const ArchitectureSpace* space_;
  FeatureMap phi_;
  FunctionPlannerOptions options_;
  int reference_count_ = 0;
  Eigen::MatrixXd basis_;  // p x (rank + 1): [scale_sd * m, L]
  Eigen::VectorXd mean_;   // m (p)
  std::vector<Architecture> reference_measured_;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_PLANNING_FUNCTION_PLANNER_H_

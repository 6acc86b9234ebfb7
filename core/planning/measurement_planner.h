// Chooses which architectures a device should measure next: the ones that most reduce the
// uncertainty of its latency model. Ours, not from the MAPLE papers:
//
// Latencies of the known (reference) devices, in log space and centred per device, are
// factored by SVD; each architecture gets the coordinates of its row in the top factors.
// A new device's log-latencies are, to first order, an affine function of those
// coordinates (the low-rank view of transfer), plus a cost per primitive (operator) that
// the references may lack; the primitive count is one more coordinate. The planner picks
// architectures greedily for a D-optimal design of that regression: each pick maximises the
// leverage x^T M^-1 x given what is measured already, which spreads the picks over the directions
// in which devices differ. Cells whose output is disconnected are never proposed.
//
//   absl::StatusOr<MeasurementPlanner> planner = MeasurementPlanner::Build(reference, space);
//   std::vector<int32_t> next = planner->Next(/*measured=*/{12, 4051}, /*count=*/10);
#ifndef MAPLEX_CORE_PLANNING_MEASUREMENT_PLANNER_H_
#define MAPLEX_CORE_PLANNING_MEASUREMENT_PLANNER_H_

#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/arch/nb201_space.h"
#include "core/model/latency_model.h"
#include "core/model/maple_model.h"

namespace maplex::core {

class MeasurementPlanner {
 public:
  // Factors the devices among `devices` that cover the whole space (the others are
  // ignored). InvalidArgument when none does. The primitive count joins the design from a
  // device's primitive_from-th sample on (where MAPLE starts fitting its term).
  static absl::StatusOr<MeasurementPlanner> Build(
      const std::vector<DeviceData>& devices, const Nb201Space& space, int factors = 4,
      int primitive_from = MapleConfig().primitive_min_samples);

  // Up to `count` architectures to measure next, most informative first, none of them in
  // `measured` (indices outside the space are ignored there).
  std::vector<int32_t> Next(absl::Span<const int32_t> measured, int count) const;
  // The same, choosing only among `candidates` (e.g. the cells an offline study has
  // ground truth for); disconnected or out-of-space candidates are skipped.
  std::vector<int32_t> Next(absl::Span<const int32_t> measured, int count,
                            absl::Span<const int32_t> candidates) const;

  int factors() const { return static_cast<int>(coordinates_.cols()) - 2; }

 private:
  MeasurementPlanner(Eigen::MatrixXd coordinates, std::vector<bool> eligible, int primitive_from)
      : coordinates_(std::move(coordinates)),
        eligible_(std::move(eligible)),
        primitive_from_(primitive_from) {}

  std::vector<int32_t> Pick(absl::Span<const int32_t> measured, int count,
                            const std::vector<bool>& eligible) const;

  Eigen::MatrixXd coordinates_;  // one row per architecture: [1, factor scores..., primitives]
  std::vector<bool> eligible_;   // output connected
  int primitive_from_;           // the sample from which the primitive count is fitted
};

// A fixed, diverse set for when no planner is available (no reference device yet):
// `count` connected cells spread evenly over the range of compute (MACs), deterministic.
std::vector<int32_t> DiverseArchitectures(const Nb201Space& space, int count);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_PLANNING_MEASUREMENT_PLANNER_H_

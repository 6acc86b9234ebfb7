// Fits device tables for any method against one set of reference devices. The work that
// does not depend on the target (reference matrix, latent factors, neighbour structure) is
// done once in Create and shared by every Fit, which is what lets the evaluation harness
// run thousands of (method, k, seed, device) fits in minutes.
//
//   absl::StatusOr<std::unique_ptr<ModelTrainer>> trainer = ModelTrainer::Create(refs, seed);
//   absl::StatusOr<DeviceTable> t = (*trainer)->Fit(target_with_k_samples, Method::kMapleX);
//
// A ModelTrainer is immutable after Create; Fit is safe to call from several threads.
#ifndef MAPLEX_CORE_MODEL_TRAINER_H_
#define MAPLEX_CORE_MODEL_TRAINER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model/maple_model.h"
#include "core/model/reference_set.h"
#include "core/model/tabulated_model.h"

namespace maplex::core {

class ModelTrainer {
 public:
  // InvalidArgument when `references` is empty or holds a device without samples. `seed`
  // is reserved: no current method draws random numbers, so equal input gives bit-equal
  // tables.
  static absl::StatusOr<std::unique_ptr<ModelTrainer>> Create(
      const std::vector<const DeviceData*>& references, uint64_t seed,
      const MapleConfig& config = MapleConfig());
  ~ModelTrainer();

  // The table of `device` (a target with its k samples, or one of the references with all
  // of its samples) under `method`. `info` (may be null) receives a MAPLE method's fit
  // diagnostics, e.g. the importance weights of the references; the baseline leaves it.
  // `same_hardware`: other devices on the same hardware as `device`; a MAPLE method may
  // take the cost per primitive of the best-measured of them (if better measured than
  // `device`) as evidence (MapleContext::Fit).
  absl::StatusOr<DeviceTable> Fit(const DeviceData& device, Method method,
                                  MapleFitInfo* info = nullptr,
                                  absl::Span<const DeviceData* const> same_hardware = {}) const;

  const ReferenceSet& references() const { return references_; }

 private:
  ModelTrainer() = default;
  ReferenceSet references_;
  std::unique_ptr<MapleContext> maple_;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_TRAINER_H_

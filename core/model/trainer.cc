#include "core/model/trainer.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "core/model/baseline.h"
#include "core/model/maple_model.h"

namespace maplex::core {

ModelTrainer::~ModelTrainer() = default;

absl::StatusOr<std::unique_ptr<ModelTrainer>> ModelTrainer::Create(
    const std::vector<const DeviceData*>& references, uint64_t /*seed*/,
    const MapleConfig& config) {
  if (references.empty()) return absl::InvalidArgumentError("no reference device");
  absl::StatusOr<ReferenceSet> refs = BuildReferenceSet(references, Nb201Space::Get().size());
  if (!refs.ok()) return refs.status();
  std::unique_ptr<ModelTrainer> trainer(new ModelTrainer());
  trainer->references_ = *std::move(refs);
  // MAPLE needs two references to factorise; with one, only the baseline is available.
  if (trainer->references_.size() >= 2) {
    absl::StatusOr<std::unique_ptr<MapleContext>> maple =
        MapleContext::Create(trainer->references_, config);
    if (!maple.ok()) return maple.status();
    trainer->maple_ = *std::move(maple);
  }
  return trainer;
}

absl::StatusOr<DeviceTable> ModelTrainer::Fit(
    const DeviceData& device, Method method, MapleFitInfo* info,
    absl::Span<const DeviceData* const> same_hardware) const {
  if (method != Method::kBaseline) {
    if (maple_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(MethodName(method), " needs at least two reference devices"));
    }
    const DeviceData* best = nullptr;
    for (const DeviceData* d : same_hardware) {
      if (d != &device && d->samples.size() > device.samples.size() &&
          (best == nullptr || d->samples.size() > best->samples.size())) {
        best = d;
      }
    }
    const std::optional<PrimitiveCost> cost =
        best != nullptr ? maple_->EstimatePrimitiveCost(*best, method) : std::nullopt;
    return maple_->Fit(device, method, info, cost ? &*cost : nullptr);
  }
  return BaselineTable(references_, FitBaseline(references_, ToLogSamples(device)), device);
}

}  // namespace maplex::core

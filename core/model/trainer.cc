#include "core/model/trainer.h"

#include "core/arch/nb201_space.h"
#include "core/model/baseline.h"

namespace maplex::core {

// Filled in by core/model/maple_model.h once MAPLE lands.
class MapleContext {};

ModelTrainer::~ModelTrainer() = default;

absl::StatusOr<std::unique_ptr<ModelTrainer>> ModelTrainer::Create(
    const std::vector<const DeviceData*>& references, uint64_t /*seed*/) {
  if (references.empty()) return absl::InvalidArgumentError("no reference device");
  absl::StatusOr<ReferenceSet> refs = BuildReferenceSet(references, Nb201Space::Get().size());
  if (!refs.ok()) return refs.status();
  std::unique_ptr<ModelTrainer> trainer(new ModelTrainer());
  trainer->references_ = *std::move(refs);
  return trainer;
}

absl::StatusOr<DeviceTable> ModelTrainer::Fit(const DeviceData& device, Method method) const {
  if (method != Method::kBaseline) {
    return absl::UnimplementedError("MAPLE methods are not committed yet; use baseline");
  }
  return BaselineTable(references_, FitBaseline(references_, ToLogSamples(device)), device);
}

}  // namespace maplex::core

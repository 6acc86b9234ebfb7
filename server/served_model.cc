#include "server/served_model.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/arch/space_registry.h"

namespace maplex::server {

bool SnapshotHasNoNb201(const v1::ModelSnapshot& snapshot) {
  return snapshot.format_version() == 0 && snapshot.devices_size() == 0;
}

v1::SpaceModel ToSpaceModel(const core::TrainedFunctionModel& trained, core::Method method) {
  v1::SpaceModel out;
  out.set_space(trained.params.space);
  out.set_method(core::MethodName(method));
  out.set_parameters(core::SerializeFunctionModel(trained.params));
  for (const core::FunctionDeviceSummary& s : trained.summaries) {
    v1::DevicePredictions* d = out.add_devices();
    d->set_device(s.device);
    d->set_hardware(s.hardware);
    d->set_used_spec(s.descriptor_use.spec);
    d->set_used_counters(s.descriptor_use.counters);
    d->set_used_measured_latencies(s.descriptor_use.measured_latencies);
    d->set_reference(s.reference);
    d->set_sample_count(s.sample_count);
    d->set_fit(s.fit);
  }
  return out;
}

absl::StatusOr<core::TrainedFunctionModel> FromSpaceModel(const v1::SpaceModel& stored) {
  absl::StatusOr<core::FunctionModelParams> params = core::ParseFunctionModel(stored.parameters());
  if (!params.ok()) return params.status();
  if (params->space != stored.space() ||
      static_cast<int>(params->devices.size()) != stored.devices_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "function model of space \"", stored.space(), "\": parameters of space \"", params->space,
        "\" with ", params->devices.size(), " devices, summaries of ", stored.devices_size()));
  }
  core::TrainedFunctionModel trained;
  trained.params = *std::move(params);
  for (const v1::DevicePredictions& d : stored.devices()) {
    core::FunctionDeviceSummary& s = trained.summaries.emplace_back();
    s.device = d.device();
    s.hardware = d.hardware();
    s.reference = d.reference();
    s.sample_count = d.sample_count();
    s.descriptor_use = {d.used_spec(), d.used_counters(), d.used_measured_latencies()};
    s.fit = d.fit();
  }
  return trained;
}

absl::StatusOr<std::shared_ptr<ServedModel>> LoadServedModel(const v1::ModelSnapshot& snapshot,
                                                             const v1::ModelInfo& info) {
  auto served = std::make_shared<ServedModel>();
  if (!SnapshotHasNoNb201(snapshot)) {
    absl::StatusOr<std::unique_ptr<core::LatencyModel>> model = core::LoadLatencyModel(snapshot);
    if (!model.ok()) {
      return absl::Status(model.status().code(),
                          absl::StrCat("model version ", info.version(),
                                       " does not load: ", model.status().message()));
    }
    served->model = *std::move(model);
  }
  for (const v1::SpaceModel& stored : snapshot.function_models()) {
    auto fail = [&](const absl::Status& s) {
      return absl::Status(
          s.code(), absl::StrCat("model version ", info.version(), ", space \"", stored.space(),
                                 "\" does not load: ", s.message()));
    };
    const core::ArchitectureSpace* space = core::FindSpace(stored.space());
    if (space == nullptr) return fail(absl::InvalidArgumentError("unknown space"));
    absl::StatusOr<core::FunctionModelParams> params =
        core::ParseFunctionModel(stored.parameters());
    if (!params.ok()) return fail(params.status());
    absl::StatusOr<core::FunctionModel> model = core::FunctionModel::Create(*std::move(params));
    if (!model.ok()) return fail(model.status());
    if (&model->features().space() != space) {
      return fail(absl::InvalidArgumentError("parameters of another space"));
    }
    ServedFunctionModel& f = served->function_models.emplace_back();
    f.space = space;
    f.model = std::make_shared<const core::FunctionModel>(*std::move(model));
  }
  served->info = info;
  served->info.set_serving(true);
  served->snapshot = snapshot;
  return served;
}

}  // namespace maplex::server

#include "server/services/predictor_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "server/rpc_status.h"
#include "server/validation.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

absl::Status PredictorService::Answer(const v1::PredictRequest& request,
                                      v1::PredictResponse* response) const {
  absl::StatusOr<PredictArchitectures> asked = ValidatePredictRequest(request, limits_);
  if (!asked.ok()) return asked.status();
  if (retired_->Contains(request.device_id())) {
    return absl::FailedPreconditionError(
        absl::StrCat("device_id: device \"", request.device_id(), "\" is retired"));
  }
  std::shared_ptr<const ServedModel> served = slot_->Get();
  if (served == nullptr) {
    return absl::UnavailableError(
        "no model is trained yet: import data or stream measurements first");
  }
  if (request.model_version() != 0 && request.model_version() != served->info.version()) {
    if (kept_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("model_version: version ", request.model_version(),
                       " is not served by this replica; serving version ", served->info.version(),
                       " (ask for 0 to take it, or ask the primary)"));
    }
    // A version the primary still keeps answers as it did when it was served.
    absl::StatusOr<std::shared_ptr<const ServedModel>> kept = kept_->Get(request.model_version());
    if (!kept.ok()) return kept.status();
    served = *std::move(kept);
  }
  // The model of the request's space answers: NB201's tabulated model, or the function
  // model of any other space.
  const bool nb201 = asked->space == &core::Nb201Space::Get();
  const ServedFunctionModel* function = nb201 ? nullptr : served->FunctionModelOf(*asked->space);
  if (nb201 ? served->model == nullptr : function == nullptr) {
    std::string why = "no reference device in that space yet";
    for (const v1::SpaceModelInfo& s : served->info.spaces()) {
      if (s.space() == std::string(asked->space->name()) && !s.reason().empty()) why = s.reason();
    }
    return absl::FailedPreconditionError(
        absl::StrCat(request.has_arch_batch() ? "arch_batch" : "archs", ": model version ",
                     served->info.version(), " serves no model of space ",
                     std::string(asked->space->name()), " (", why, ")"));
  }
  std::vector<core::LatencyPrediction> predicted(asked->size());
  absl::Status s = nb201 ? served->model->Predict(request.device_id(), asked->nb201_indices,
                                                  absl::MakeSpan(predicted))
                         : function->model->Predict(request.device_id(), asked->archs,
                                                    absl::MakeSpan(predicted));
  if (absl::IsNotFound(s) && !nb201) {
    return DeviceNotInSpace(request.device_id(), *asked->space, served->info.version());
  }
  if (absl::IsNotFound(s) && store_ == nullptr) {
    return absl::NotFoundError(absl::StrCat("device_id: model version ", served->info.version(),
                                            " has no device \"", request.device_id(), "\""));
  }
  if (absl::IsNotFound(s)) {
    // Say why: unknown device, or known but without measurements in this model yet.
    absl::StatusOr<v1::Device> device = store_->GetDevice(request.device_id());
    if (!device.ok()) {
      return absl::NotFoundError(
          absl::StrCat("device_id: no device \"", request.device_id(), "\" is registered"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "device_id: device \"", request.device_id(), "\" has ", device->measurement_count(),
        " measurements but model version ", served->info.version(),
        " was trained before them; a newer model follows shortly"));
  }
  if (!s.ok()) return s;
  response->set_model_version(served->info.version());
  response->set_method(served->info.method());
  if (request.columnar()) {
    const int n = static_cast<int>(predicted.size());
    v1::PredictionColumns* columns = response->mutable_columns();
    columns->mutable_latency_ms()->Resize(n, 0);
    columns->mutable_lower_ms()->Resize(n, 0);
    columns->mutable_upper_ms()->Resize(n, 0);
    double* latency = columns->mutable_latency_ms()->mutable_data();
    double* lower = columns->mutable_lower_ms()->mutable_data();
    double* upper = columns->mutable_upper_ms()->mutable_data();
    for (int i = 0; i < n; ++i) {
      latency[i] = predicted[i].latency_ms;
      lower[i] = predicted[i].lower_ms;
      upper[i] = predicted[i].upper_ms;
    }
    return absl::OkStatus();
  }
  response->mutable_predictions()->Reserve(static_cast<int>(predicted.size()));
  for (size_t i = 0; i < predicted.size(); ++i) {
    v1::Prediction* p = response->add_predictions();
    if (nb201) p->set_arch_index(asked->nb201_indices[i]);
    p->set_latency_ms(predicted[i].latency_ms);
    p->set_lower_ms(predicted[i].lower_ms);
    p->set_upper_ms(predicted[i].upper_ms);
  }
  return absl::OkStatus();
}

absl::Status PredictorService::DeviceNotInSpace(const std::string& device_id,
                                                const core::ArchitectureSpace& space,
                                                uint64_t version) const {
  const std::string space_name(space.name());
  if (store_ != nullptr) {
    // Known and measured in the space after this version was trained: a newer one follows.
    absl::StatusOr<v1::Device> device = store_->GetDevice(device_id);
    if (device.ok()) {
      auto measured = device->measurement_count_by_space().find(space_name);
      if (measured != device->measurement_count_by_space().end() && measured->second > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("device_id: device \"", device_id, "\" has ", measured->second,
                         " measurements in space ", space_name, " but model version ", version,
                         " was trained before them; a newer model follows shortly"));
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("device_id: device \"", device_id,
                                          "\" is not known in space ", space_name,
                                          " (model version ", version, ")"));
}

Status PredictorService::Predict(ServerContext* context, const v1::PredictRequest* request,
                                 v1::PredictResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Predictor/Predict");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(Answer(*request, response));
}

Status PredictorService::PredictStream(
    ServerContext* context,
    grpc::ServerReaderWriter<v1::PredictResponse, v1::PredictRequest>* stream) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Predictor/PredictStream");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  v1::PredictRequest request;
  while (stream->Read(&request)) {
    v1::PredictResponse response;
    if (absl::Status s = Answer(request, &response); !s.ok()) return ToGrpcStatus(s);
    if (!stream->Write(response)) break;
  }
  return Status::OK;
}

}  // namespace maplex::server

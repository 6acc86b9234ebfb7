#include "server/services/predictor_service.h"

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
  // The model of the request's space answers. The served snapshot holds the NB201 model;
  // a space gets served by adding its model here (and to ServedModel).
  if (asked->space != &core::Nb201Space::Get()) {
    return absl::FailedPreconditionError(
        absl::StrCat(request.has_arch_batch() ? "arch_batch" : "archs", ": no model serves space ",
                     SpaceName(*asked->space), " yet"));
  }
  const std::vector<int32_t>* archs = &asked->nb201_indices;
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
  std::vector<core::LatencyPrediction> predicted(archs->size());
  absl::Status s =
      served->model->Predict(request.device_id(), *archs, absl::MakeSpan(predicted));
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
    p->set_arch_index((*archs)[i]);
    p->set_latency_ms(predicted[i].latency_ms);
    p->set_lower_ms(predicted[i].lower_ms);
    p->set_upper_ms(predicted[i].upper_ms);
  }
  return absl::OkStatus();
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

#include "server/services/models_service.h"

#include "absl/strings/str_cat.h"
#include "server/rpc_status.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

uint64_t ModelsService::ServingVersion() const {
  std::shared_ptr<const ServedModel> served = slot_->Get();
  return served == nullptr ? 0 : served->info.version();
}

Status ModelsService::ListModels(ServerContext* context, const v1::ListModelsRequest*,
                                 v1::ListModelsResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Models/ListModels");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (store_ == nullptr) {
    if (std::shared_ptr<const ServedModel> served = slot_->Get()) {
      *response->add_models() = served->info;
    }
    return Status::OK;
  }
  absl::StatusOr<std::vector<v1::ModelInfo>> models = store_->ListModels();
  if (!models.ok()) return ToGrpcStatus(models.status());
  uint64_t serving = ServingVersion();
  for (v1::ModelInfo& m : *models) {
    m.set_serving(m.version() == serving);
    *response->add_models() = std::move(m);
  }
  return Status::OK;
}

Status ModelsService::GetModel(ServerContext* context, const v1::GetModelRequest* request,
                               v1::ModelInfo* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Models/GetModel");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  uint64_t serving = ServingVersion();
  uint64_t version = request->version() == 0 ? serving : request->version();
  if (version == 0) {
    return ToGrpcStatus(absl::NotFoundError("version: no model is served yet"));
  }
  if (store_ == nullptr) {
    std::shared_ptr<const ServedModel> served = slot_->Get();
    if (version != serving) {
      return ToGrpcStatus(absl::NotFoundError(absl::StrCat(
          "version: ", version, " is not served here; this replica of ", primary_address_,
          " holds only version ", serving)));
    }
    *response = served->info;
    return Status::OK;
  }
  absl::StatusOr<v1::ModelInfo> info = store_->GetModelInfo(version);
  if (!info.ok()) return ToGrpcStatus(info.status());
  *response = *std::move(info);
  response->set_serving(version == serving);
  return Status::OK;
}

Status ModelsService::Retrain(ServerContext* context, const v1::RetrainRequest*,
                              v1::ModelInfo* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Models/Retrain");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (trainer_ == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        absl::StrCat("this server is a replica of ", primary_address_, ": retrain there")));
  }
  absl::StatusOr<v1::ModelInfo> info = trainer_->TrainNow();
  if (!info.ok()) return ToGrpcStatus(info.status());
  *response = *std::move(info);
  return Status::OK;
}

Status ModelsService::WatchModels(ServerContext* context, const v1::WatchModelsRequest* request,
                                  grpc::ServerWriter<v1::ModelUpdate>* writer) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Models/WatchModels");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  uint64_t sent = 0;
  while (!context->IsCancelled() && !stopping_) {
    std::shared_ptr<const ServedModel> served = slot_->WaitNewer(sent, absl::Milliseconds(250));
    if (served == nullptr || served->info.version() <= sent) continue;
    v1::ModelUpdate update;
    *update.mutable_info() = served->info;
    if (request->include_snapshot()) *update.mutable_snapshot() = served->snapshot;
    if (!writer->Write(update)) break;
    sent = served->info.version();
  }
  return Status::OK;
}

}  // namespace maplex::server

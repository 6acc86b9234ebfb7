#include "server/services/models_service.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/limits.h"
#include "server/rpc_status.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

uint64_t ModelsService::ServingVersion() const {
  std::shared_ptr<const ServedModel> served = slot_->Get();
  return served == nullptr ? 0 : served->info.version();
}

Status ModelsService::ListModels(ServerContext* context, const v1::ListModelsRequest* request,
                                 v1::ListModelsResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Models/ListModels");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // The same page bounds as ListDevices.
  const Limits limits;
  const int page_size =
      request->page_size() == 0 ? limits.default_list_page_size : request->page_size();
  if (page_size < 0 || page_size > limits.max_list_page_size) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "page_size: ", request->page_size(), " is outside 0..", limits.max_list_page_size)));
  }
  // The token is the last version of the previous page; the next page is older versions.
  uint64_t before = 0;
  if (!request->page_token().empty() &&
      (!absl::SimpleAtoi(request->page_token(), &before) || before == 0)) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("page_token: \"", absl::CEscape(request->page_token().substr(0, 64)),
                     "\" is not a token this server gave out")));
  }
  if (store_ == nullptr) {
    std::shared_ptr<const ServedModel> served = slot_->Get();
    if (served != nullptr && before == 0) *response->add_models() = served->info;
    return Status::OK;
  }
  absl::StatusOr<std::vector<v1::ModelInfo>> models = store_->ListModels(before, page_size + 1);
  if (!models.ok()) return ToGrpcStatus(models.status());
  const bool more = static_cast<int>(models->size()) > page_size;
  if (more) {
    models->resize(page_size);
    response->set_next_page_token(absl::StrCat(models->back().version()));
  }
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
  const absl::Duration heartbeat = request->heartbeat_seconds() > 0
                                       ? std::clamp(absl::Seconds(request->heartbeat_seconds()),
                                                    absl::Milliseconds(50), absl::Hours(1))
                                       : absl::InfiniteDuration();
  // At least 1 KiB per chunk: smaller ones would only multiply messages.
  const size_t chunk_bytes =
      request->snapshot_chunk_bytes() == 0
          ? 0
          : std::max<size_t>(request->snapshot_chunk_bytes(), kMinSnapshotChunkBytes);
  uint64_t sent = 0;
  absl::Time last_write = absl::Now();
  while (!context->IsCancelled() && !stopping_) {
    std::shared_ptr<const ServedModel> served =
        slot_->WaitNewer(sent, std::min(absl::Milliseconds(250), heartbeat));
    if (served == nullptr || served->info.version() <= sent) {
      if (absl::Now() - last_write < heartbeat) continue;
      v1::ModelUpdate beat;
      beat.mutable_info()->set_version(sent);
      if (!writer->Write(beat)) {
        return Status(grpc::StatusCode::UNAVAILABLE, "watch models: writing a heartbeat failed");
      }
      last_write = absl::Now();
      continue;
    }
    if (absl::Status s = WriteUpdate(*served, *request, chunk_bytes, writer); !s.ok()) {
      // The follower saw a partial update at most; a non-OK end tells it so.
      return ToGrpcStatus(s);
    }
    last_write = absl::Now();
    sent = served->info.version();
  }
  return Status(grpc::StatusCode::UNAVAILABLE,
                stopping_ ? "the server is stopping" : "the call was cancelled");
}

absl::Status ModelsService::WriteUpdate(const ServedModel& served,
                                        const v1::WatchModelsRequest& request, size_t chunk_bytes,
                                        grpc::ServerWriter<v1::ModelUpdate>* writer) {
  const uint64_t version = served.info.version();
  auto write_failed = [version] {
    return absl::UnavailableError(
        absl::StrCat("watch models: writing version ", version, " failed"));
  };
  v1::ModelUpdate update;
  *update.mutable_info() = served.info;
  if (!request.include_snapshot() || chunk_bytes == 0) {
    if (request.include_snapshot()) *update.mutable_snapshot() = served.snapshot;
    return writer->Write(update) ? absl::OkStatus() : write_failed();
  }
  const std::string bytes = served.snapshot.SerializeAsString();
  update.set_snapshot_total_bytes(bytes.size());
  for (size_t offset = 0; offset < bytes.size(); offset += chunk_bytes) {
    if (offset > 0) {
      update.clear_info();
      update.mutable_info()->set_version(version);
    }
    update.set_snapshot_offset(offset);
    update.set_snapshot_chunk(bytes.substr(offset, chunk_bytes));
    if (!writer->Write(update)) return write_failed();
  }
  return absl::OkStatus();
}

}  // namespace maplex::server

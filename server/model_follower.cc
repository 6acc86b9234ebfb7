#include "server/model_follower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/model/latency_model.h"
#include "maplex/v1/models.grpc.pb.h"
#include "platform/log.h"

namespace maplex::server {

absl::StatusOr<std::shared_ptr<const ServedModel>> ServedModelFromUpdate(
    const v1::ModelUpdate& update) {
  if (!update.has_snapshot()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model version ", update.info().version(), " arrived without a snapshot"));
  }
  absl::StatusOr<std::unique_ptr<core::LatencyModel>> model =
      core::LoadLatencyModel(update.snapshot());
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat("model version ", update.info().version(),
                                     " does not load: ", model.status().message()));
  }
  auto served = std::make_shared<ServedModel>();
  served->model = *std::move(model);
  served->info = update.info();
  served->info.set_serving(true);
  served->snapshot = update.snapshot();
  return std::shared_ptr<const ServedModel>(std::move(served));
}

ModelFollower::ModelFollower(std::string primary_address, ModelSlot* slot, FollowerOptions options)
    : primary_address_(std::move(primary_address)), slot_(slot), options_(options) {}

ModelFollower::~ModelFollower() { Stop(); }

void ModelFollower::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void ModelFollower::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (open_call_ != nullptr) open_call_->TryCancel();
  }
  stop_requested_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ModelFollower::Loop() {
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    if (FollowOnce()) backoff = options_.initial_backoff;
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_requested_.wait_for(lock, absl::ToChronoNanoseconds(backoff),
                                 [this] { return stopping_; })) {
      return;
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool ModelFollower::FollowOnce() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  // A fresh channel per attempt: a primary that restarted is dialled anew at once.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      OpenChannel(primary_address_, options_.primary, args);
  if (!channel.ok()) {
    LogWarning("primary_channel_failed", {{"primary", primary_address_},
                                          {"error", channel.status().ToString()}});
    return false;
  }
  std::unique_ptr<v1::Models::Stub> stub = v1::Models::NewStub(*channel);
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    open_call_ = &context;
  }
  v1::WatchModelsRequest request;
  request.set_include_snapshot(true);
  LogDebug("replica_watch_started", {{"primary", primary_address_}});
  std::unique_ptr<grpc::ClientReader<v1::ModelUpdate>> reader =
      stub->WatchModels(&context, request);
  bool delivered = false;
  v1::ModelUpdate update;
  while (reader->Read(&update)) {
    std::shared_ptr<const ServedModel> current = slot_->Get();
    if (current != nullptr && update.info().version() <= current->info.version()) continue;
    absl::StatusOr<std::shared_ptr<const ServedModel>> served = ServedModelFromUpdate(update);
    if (!served.ok()) {
      // Keep serving the last good model; a later version may load.
      LogError("replica_model_unusable",
               {{"primary", primary_address_}, {"error", served.status().ToString()}});
      continue;
    }
    slot_->Set(*std::move(served));
    delivered = true;
    LogInfo("replica_model_served", {{"primary", primary_address_},
                                     {"version", absl::StrCat(update.info().version())},
                                     {"method", update.info().method()}});
  }
  grpc::Status status = reader->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  open_call_ = nullptr;
  if (!stopping_) {
    LogWarning("replica_stream_ended", {{"primary", primary_address_},
                                        {"code", absl::StrCat(status.error_code())},
                                        {"error", status.error_message()}});
  }
  return delivered;
}

}  // namespace maplex::server

#include "server/model_follower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/model/latency_model.h"
#include "maplex/v1/models.grpc.pb.h"
#include "platform/log.h"
#include "server/served_model.h"

namespace maplex::server {

absl::StatusOr<std::shared_ptr<const ServedModel>> ServedModelFromUpdate(
    const v1::ModelUpdate& update) {
  if (!update.has_snapshot()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model version ", update.info().version(), " arrived without a snapshot"));
  }
  // NB201's model and every other space's function model travel in the one snapshot.
  absl::StatusOr<std::shared_ptr<ServedModel>> served =
      LoadServedModel(update.snapshot(), update.info());
  if (!served.ok()) return served.status();
  return std::shared_ptr<const ServedModel>(*std::move(served));
}

absl::StatusOr<std::optional<v1::ModelUpdate>> SnapshotAssembler::Add(v1::ModelUpdate& update) {
  const uint64_t total = update.snapshot_total_bytes();
  const uint64_t offset = update.snapshot_offset();
  auto fail = [this](std::string why) {
    bytes_.clear();
    total_ = 0;
    return absl::InvalidArgumentError(std::move(why));
  };
  if (offset == 0) {
    if (total == 0 || total > static_cast<uint64_t>(max_bytes_)) {
      return fail(absl::StrCat("model version ", update.info().version(), ": a snapshot of ", total,
                               " bytes (at most ", max_bytes_, " accepted)"));
    }
    first_ = update;
    first_.clear_snapshot_chunk();
    bytes_.clear();
    bytes_.reserve(total);
    total_ = total;
  } else if (total_ == 0 || total != total_ || offset != bytes_.size() ||
             update.info().version() != first_.info().version()) {
    return fail(absl::StrCat("model version ", update.info().version(), ": chunk at offset ",
                             offset, " of ", total, " does not continue version ",
                             first_.info().version(), " at ", bytes_.size(), " of ", total_));
  }
  if (bytes_.size() + update.snapshot_chunk().size() > total_) {
    return fail(absl::StrCat("model version ", update.info().version(), ": chunks exceed ", total_,
                             " bytes"));
  }
  bytes_.append(update.snapshot_chunk());
  if (bytes_.size() < total_) return std::nullopt;
  v1::ModelUpdate whole = std::move(first_);
  whole.clear_snapshot_total_bytes();
  whole.clear_snapshot_offset();
  bool parsed = whole.mutable_snapshot()->ParseFromString(bytes_);
  std::string().swap(bytes_);
  total_ = 0;
  if (!parsed) {
    return fail(absl::StrCat("model version ", whole.info().version(),
                             ": the reassembled snapshot does not parse"));
  }
  return std::optional<v1::ModelUpdate>(std::move(whole));
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

absl::Time ModelFollower::last_heard() const {
  int64_t ns = last_heard_unix_ns_.load();
  return ns == std::numeric_limits<int64_t>::min() ? absl::InfinitePast() : absl::FromUnixNanos(ns);
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
  request.set_snapshot_chunk_bytes(static_cast<uint32_t>(options_.snapshot_chunk_bytes));
  // Four heartbeats per staleness bound: one late heartbeat does not mark the model stale.
  request.set_heartbeat_seconds(absl::ToDoubleSeconds(options_.max_staleness / 4));
  LogDebug("replica_watch_started", {{"primary", primary_address_}});
  std::unique_ptr<grpc::ClientReader<v1::ModelUpdate>> reader =
      stub->WatchModels(&context, request);
  bool delivered = false;
  v1::ModelUpdate received;
  SnapshotAssembler assembler(options_.max_snapshot_bytes);
  while (reader->Read(&received)) {
    last_heard_unix_ns_ = absl::ToUnixNanos(absl::Now());
    std::shared_ptr<const ServedModel> current = slot_->Get();
    if (current != nullptr && received.info().version() <= current->info.version()) continue;
    if (received.snapshot_total_bytes() == 0 && !received.has_snapshot()) continue;  // heartbeat
    v1::ModelUpdate update;
    if (received.snapshot_total_bytes() > 0) {
      absl::StatusOr<std::optional<v1::ModelUpdate>> whole = assembler.Add(received);
      if (!whole.ok()) {
        // A broken sequence cannot be resumed: start the stream over.
        LogError("replica_snapshot_broken",
                 {{"primary", primary_address_}, {"error", whole.status().ToString()}});
        context.TryCancel();
        break;
      }
      if (!whole->has_value()) continue;
      update = **std::move(whole);
    } else {
      update = std::move(received);
    }
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

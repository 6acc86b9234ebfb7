#include "server/token_follower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "maplex/v1/tokens.grpc.pb.h"
#include "platform/log.h"

namespace maplex::server {

TokenFollower::TokenFollower(std::string primary_address, TokenRegistry* mirror,
                             FollowerOptions options)
    : primary_address_(std::move(primary_address)), mirror_(mirror), options_(options) {}

TokenFollower::~TokenFollower() { Stop(); }

void TokenFollower::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void TokenFollower::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (open_call_ != nullptr) open_call_->TryCancel();
  }
  stop_requested_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TokenFollower::Loop() {
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

bool TokenFollower::FollowOnce() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      OpenChannel(primary_address_, options_.primary, grpc::ChannelArguments());
  if (!channel.ok()) {
    LogWarning("primary_channel_failed",
               {{"primary", primary_address_}, {"error", channel.status().ToString()}});
    return false;
  }
  std::unique_ptr<v1::Tokens::Stub> stub = v1::Tokens::NewStub(*channel);
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    open_call_ = &context;
  }
  v1::WatchTokenDigestsRequest request;
  // Four heartbeats per staleness bound: one lost or late heartbeat does not lock callers out.
  request.set_heartbeat_seconds(absl::ToDoubleSeconds(options_.max_staleness / 4));
  std::unique_ptr<grpc::ClientReader<v1::TokenDigests>> reader =
      stub->WatchTokenDigests(&context, request);
  bool delivered = false;
  v1::TokenDigests digests;
  while (reader->Read(&digests)) {
    mirror_->ReplaceAll(digests, absl::Now() + options_.max_staleness);
    if (!delivered) {
      LogInfo("replica_tokens_received",
              {{"primary", primary_address_}, {"tokens", absl::StrCat(digests.tokens_size())}});
    }
    delivered = true;
  }
  grpc::Status status = reader->Finish();
  std::lock_guard<std::mutex> lock(mu_);
  open_call_ = nullptr;
  if (!stopping_) {
    LogWarning("replica_token_stream_ended", {{"primary", primary_address_},
                                              {"code", absl::StrCat(status.error_code())},
                                              {"error", status.error_message()}});
  }
  return delivered;
}

}  // namespace maplex::server

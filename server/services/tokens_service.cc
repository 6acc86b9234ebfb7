#include "server/services/tokens_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/rpc_status.h"
#include "server/validation.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

Status TokensService::CreateToken(ServerContext* context, const v1::CreateTokenRequest* request,
                                  v1::CreateTokenResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Tokens/CreateToken");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!request->device_id().empty()) {
    if (absl::Status s = ValidateIdentifier(request->device_id(), "device_id", limits_); !s.ok()) {
      return ToGrpcStatus(s);
    }
  }
  if (static_cast<int>(request->name().size()) > limits_.max_text_length) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("name: ", request->name().size(),
                                                                " bytes, more than the limit of ",
                                                                limits_.max_text_length)));
  }
  absl::StatusOr<TokenRegistry::Created> created =
      tokens_->Create(request->role(), request->device_id(), request->name());
  if (!created.ok()) return ToGrpcStatus(created.status());
  *response->mutable_token() = std::move(created->token);
  response->set_secret(std::move(created->secret));
  return Status::OK;
}

Status TokensService::ListTokens(ServerContext* context, const v1::ListTokensRequest*,
                                 v1::ListTokensResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Tokens/ListTokens");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  for (v1::Token& t : tokens_->List()) *response->add_tokens() = std::move(t);
  return Status::OK;
}

Status TokensService::RevokeToken(ServerContext* context, const v1::RevokeTokenRequest* request,
                                  v1::Token* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Tokens/RevokeToken");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<v1::Token> revoked = tokens_->Revoke(request->id());
  if (!revoked.ok()) return ToGrpcStatus(revoked.status());
  *response = *std::move(revoked);
  return Status::OK;
}

Status TokensService::WatchTokenDigests(ServerContext* context,
                                        const v1::WatchTokenDigestsRequest* request,
                                        grpc::ServerWriter<v1::TokenDigests>* writer) {
  absl::StatusOr<Caller> caller =
      authorizer_->Authorize(*context, "/maplex.v1.Tokens/WatchTokenDigests");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const absl::Duration heartbeat = request->heartbeat_seconds() > 0
                                       ? std::clamp(absl::Seconds(request->heartbeat_seconds()),
                                                    absl::Milliseconds(50), absl::Hours(1))
                                       : absl::Seconds(5);
  uint64_t sent_generation = 0;
  absl::Time next_heartbeat = absl::InfinitePast();
  while (!context->IsCancelled() && !stopping_) {
    uint64_t generation = tokens_->generation();
    if (generation != sent_generation || absl::Now() >= next_heartbeat) {
      // Read the generation first: a change racing with ActiveDigests is sent again.
      if (!writer->Write(tokens_->ActiveDigests())) {
        return Status(grpc::StatusCode::UNAVAILABLE, "token digests: the write failed");
      }
      sent_generation = generation;
      next_heartbeat = absl::Now() + heartbeat;
    }
    absl::SleepFor(std::min(absl::Milliseconds(100), heartbeat));
  }
  return Status(grpc::StatusCode::UNAVAILABLE,
                stopping_ ? "the server is stopping" : "the call was cancelled");
}

}  // namespace maplex::server

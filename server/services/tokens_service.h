// maplex.v1.Tokens: operators create, list and revoke bearer tokens; predictor replicas
// watch the digests of the active ones (WatchTokenDigests) to check their own callers.
#ifndef MAPLEX_SERVER_SERVICES_TOKENS_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_TOKENS_SERVICE_H_

#include <atomic>

#include "maplex/v1/tokens.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/auth/token_registry.h"
#include "server/limits.h"

namespace maplex::server {

class TokensService final : public maplex::v1::Tokens::Service {
 public:
  TokensService(TokenRegistry* tokens, const Authorizer* authorizer, const Limits& limits)
      : tokens_(tokens), authorizer_(authorizer), limits_(limits) {}

  grpc::Status CreateToken(grpc::ServerContext* context,
                           const maplex::v1::CreateTokenRequest* request,
                           maplex::v1::CreateTokenResponse* response) override;
  grpc::Status ListTokens(grpc::ServerContext* context,
                          const maplex::v1::ListTokensRequest* request,
                          maplex::v1::ListTokensResponse* response) override;
  grpc::Status RevokeToken(grpc::ServerContext* context,
                           const maplex::v1::RevokeTokenRequest* request,
                           maplex::v1::Token* response) override;
  // Sends the active digests, again within 100 ms of each change and at least every
  // heartbeat; ends with UNAVAILABLE when a write fails or the server stops.
  grpc::Status WatchTokenDigests(grpc::ServerContext* context,
                                 const maplex::v1::WatchTokenDigestsRequest* request,
                                 grpc::ServerWriter<maplex::v1::TokenDigests>* writer) override;

  // Ends open WatchTokenDigests streams (at shutdown).
  void StopWatches() { stopping_ = true; }

 private:
  TokenRegistry* const tokens_;
  const Authorizer* const authorizer_;
  const Limits limits_;
  std::atomic<bool> stopping_{false};
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_TOKENS_SERVICE_H_

// A predictor replica's copy of its primary's tokens: follows Tokens.WatchTokenDigests
// (digests of the unrevoked tokens, never secrets) into a TokenRegistry::Mirror, so that
// the replica checks its callers' bearer tokens like the primary does. Every message
// from the primary (a change or a heartbeat) keeps the copy fresh for
// options.max_staleness; after that the mirror refuses every token (Unavailable), so a
// token revoked on the primary stops working here within max_staleness even when the
// primary is unreachable, and within a fraction of a second when it is not.
//
//   std::unique_ptr<TokenRegistry> mirror = TokenRegistry::Mirror();
//   TokenFollower follower("10.0.0.5:50051", mirror.get(), FollowerOptions{});
//   follower.Start();   // background thread, reconnects with backoff
//   ...
//   follower.Stop();
#ifndef MAPLEX_SERVER_TOKEN_FOLLOWER_H_
#define MAPLEX_SERVER_TOKEN_FOLLOWER_H_

#include <grpcpp/client_context.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "server/auth/token_registry.h"
#include "server/model_follower.h"

namespace maplex::server {

class TokenFollower {
 public:
  // `mirror` must outlive the follower. The primary is reached with options.primary,
  // whose token must be a replica (or operator) token of the primary.
  TokenFollower(std::string primary_address, TokenRegistry* mirror, FollowerOptions options);
  ~TokenFollower();  // Stop()s

  void Start();
  // Cancels the open stream and joins the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  // One stream until it ends; true when it delivered at least one digest set.
  bool FollowOnce();

  const std::string primary_address_;
  TokenRegistry* const mirror_;
  const FollowerOptions options_;

  std::mutex mu_;
  std::condition_variable stop_requested_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* open_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_TOKEN_FOLLOWER_H_

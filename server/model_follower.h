// Replica mode: follows the primary's Models.WatchModels stream and serves each model
// version it announces. The snapshot travels in the stream (include_snapshot), is loaded
// with core::LoadLatencyModel and swapped into the ModelSlot. When the stream breaks (the
// primary restarts or goes away) the follower reconnects with exponential backoff; the
// slot keeps serving the last model meanwhile.
//
//   ModelFollower follower("10.0.0.5:50051", &slot, FollowerOptions{});
//   follower.Start();   // background thread
//   ...
//   follower.Stop();    // cancels the stream, joins
#ifndef MAPLEX_SERVER_MODEL_FOLLOWER_H_
#define MAPLEX_SERVER_MODEL_FOLLOWER_H_

#include <grpcpp/client_context.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "maplex/v1/models.pb.h"
#include "platform/grpc_channel.h"
#include "server/model_slot.h"

namespace maplex::server {

struct FollowerOptions {
  // Reconnect delays double from `initial_backoff` up to `max_backoff`, and start over
  // once a stream delivered a model.
  absl::Duration initial_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(10);
  int max_message_bytes = 64 << 20;  // a snapshot of 20 devices is ~5 MB
  // How to reach a primary that checks callers: a token of a role that may watch models
  // (client or operator), its CA, a client certificate. Empty: plaintext, no token.
  ChannelSecurity primary;
};

// Loads the model of `update` into a ServedModel (no planner: a replica takes no tasks).
absl::StatusOr<std::shared_ptr<const ServedModel>> ServedModelFromUpdate(
    const maplex::v1::ModelUpdate& update);

class ModelFollower {
 public:
  ModelFollower(std::string primary_address, ModelSlot* slot, FollowerOptions options);
  ~ModelFollower();  // Stop()s

  void Start();
  // Cancels the open stream and joins the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  // One WatchModels stream until it ends; true when it delivered at least one new model.
  bool FollowOnce();

  const std::string primary_address_;
  ModelSlot* const slot_;
  const FollowerOptions options_;

  std::mutex mu_;
  std::condition_variable stop_requested_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* open_call_ ABSL_GUARDED_BY(mu_) = nullptr;  // to cancel at Stop
  std::thread thread_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_MODEL_FOLLOWER_H_

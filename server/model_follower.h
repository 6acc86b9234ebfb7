// Replica mode: follows the primary's Models.WatchModels stream and serves each model
// version it announces. The snapshot travels in the stream in chunks of
// snapshot_chunk_bytes (so no single message holds a whole model), is reassembled, loaded
// with core::LoadLatencyModel and swapped into the ModelSlot. The primary sends a heartbeat
// when it has nothing else to say, so last_heard() tells how current the served model is
// known to be. When the stream breaks (the primary restarts or goes away) the follower
// reconnects with exponential backoff; the slot keeps serving the last model meanwhile.
//
//   ModelFollower follower("10.0.0.5:50051", &slot, FollowerOptions{});
//   follower.Start();   // background thread
//   ...
//   follower.Stop();    // cancels the stream, joins
#ifndef MAPLEX_SERVER_MODEL_FOLLOWER_H_
#define MAPLEX_SERVER_MODEL_FOLLOWER_H_

#include <grpcpp/client_context.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
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
  // Snapshots arrive in pieces of this size; a reassembled one may not exceed
  // max_snapshot_bytes (memory is bounded whatever the primary sends).
  int snapshot_chunk_bytes = 1 << 20;
  int64_t max_snapshot_bytes = int64_t{1} << 30;
  // The primary is asked for a heartbeat every quarter of this. A replica that heard
  // nothing from its primary for longer reports NOT_SERVING (its model may be outdated)
  // and, with tokens, refuses every token (it may miss a revocation).
  absl::Duration max_staleness = absl::Seconds(60);
  // How to reach a primary that checks callers: a token of a role that may watch models
  // (client or operator), its CA, a client certificate. Empty: plaintext, no token.
  ChannelSecurity primary;
};

// Loads the model of `update` into a ServedModel (no planner: a replica takes no tasks).
absl::StatusOr<std::shared_ptr<const ServedModel>> ServedModelFromUpdate(
    const maplex::v1::ModelUpdate& update);

// Reassembles the chunked snapshot of one model version (WatchModelsRequest
// snapshot_chunk_bytes). Add() takes each update that carries a chunk; once the last
// chunk arrived it returns the update with the whole snapshot parsed into it.
class SnapshotAssembler {
 public:
  explicit SnapshotAssembler(int64_t max_snapshot_bytes) : max_bytes_(max_snapshot_bytes) {}
  // std::nullopt while chunks are missing. InvalidArgument when a chunk does not continue
  // the one before (wrong version or offset), the total exceeds max_snapshot_bytes or
  // changes, or the reassembled bytes are no ModelSnapshot; the partial snapshot is dropped.
  absl::StatusOr<std::optional<maplex::v1::ModelUpdate>> Add(maplex::v1::ModelUpdate& update);

 private:
  const int64_t max_bytes_;
  maplex::v1::ModelUpdate first_;  // the first chunk's update: full info
  std::string bytes_;
  uint64_t total_ = 0;
};

class ModelFollower {
 public:
  ModelFollower(std::string primary_address, ModelSlot* slot, FollowerOptions options);
  ~ModelFollower();  // Stop()s

  void Start();
  // Cancels the open stream and joins the thread. Idempotent.
  void Stop();

  // When the primary's stream last delivered anything (a model, a chunk, a heartbeat);
  // absl::InfinitePast() before that.
  absl::Time last_heard() const;

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
  std::atomic<int64_t> last_heard_unix_ns_{std::numeric_limits<int64_t>::min()};
  std::thread thread_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_MODEL_FOLLOWER_H_

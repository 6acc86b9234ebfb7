// maplex.v1.Models: model versions, their training data and accuracy; forced retraining;
// a stream of new versions for replicas.
//
// On a replica (no store, no trainer) it answers from the served model alone: ListModels
// and GetModel know only the version being served, Retrain is FAILED_PRECONDITION naming
// the primary, WatchModels works as on the primary (replicas can be chained).
//
// WatchModels sends snapshots whole (old clients) or in chunks (snapshot_chunk_bytes), a
// heartbeat when asked (heartbeat_seconds), and ends with a non-OK status when a write
// fails or the server stops, so a follower never mistakes a cut stream for a finished one.
#ifndef MAPLEX_SERVER_SERVICES_MODELS_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_MODELS_SERVICE_H_

#include <atomic>
#include <string>
#include <utility>

#include "maplex/v1/models.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/model_slot.h"
#include "server/store/store.h"
#include "server/trainer.h"

namespace maplex::server {

class ModelsService final : public maplex::v1::Models::Service {
 public:
  // `store` and `trainer` are null on a replica of `primary_address`.
  ModelsService(const Authorizer* authorizer, Store* store, const ModelSlot* slot,
                Trainer* trainer, std::string primary_address)
      : authorizer_(authorizer),
        store_(store),
        slot_(slot),
        trainer_(trainer),
        primary_address_(std::move(primary_address)) {}

  grpc::Status ListModels(grpc::ServerContext* context,
                          const maplex::v1::ListModelsRequest* request,
                          maplex::v1::ListModelsResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const maplex::v1::GetModelRequest* request,
                        maplex::v1::ModelInfo* response) override;
  grpc::Status Retrain(grpc::ServerContext* context, const maplex::v1::RetrainRequest* request,
                       maplex::v1::ModelInfo* response) override;
  grpc::Status WatchModels(grpc::ServerContext* context,
                           const maplex::v1::WatchModelsRequest* request,
                           grpc::ServerWriter<maplex::v1::ModelUpdate>* writer) override;

  // Ends open WatchModels streams (at shutdown).
  void StopWatches() { stopping_ = true; }

 private:
  // Serialized snapshots go out in pieces of at least this many bytes.
  static constexpr size_t kMinSnapshotChunkBytes = 1024;

  uint64_t ServingVersion() const;
  // One model version to a watcher: one update, or its snapshot in chunks of
  // `chunk_bytes` (> 0). Unavailable when a write fails.
  absl::Status WriteUpdate(const ServedModel& served, const maplex::v1::WatchModelsRequest& request,
                           size_t chunk_bytes, grpc::ServerWriter<maplex::v1::ModelUpdate>* writer);

  const Authorizer* const authorizer_;
  Store* const store_;
  const ModelSlot* const slot_;
  Trainer* const trainer_;
  const std::string primary_address_;
  std::atomic<bool> stopping_{false};
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_MODELS_SERVICE_H_

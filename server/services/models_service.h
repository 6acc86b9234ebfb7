// maplex.v1.Models: model versions, their training data and accuracy; forced retraining;
// a stream of new versions for replicas.
#ifndef MAPLEX_SERVER_SERVICES_MODELS_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_MODELS_SERVICE_H_

#include <atomic>

#include "maplex/v1/models.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/model_slot.h"
#include "server/store/store.h"
#include "server/trainer.h"

namespace maplex::server {

class ModelsService final : public maplex::v1::Models::Service {
 public:
  ModelsService(const Authorizer* authorizer, Store* store, const ModelSlot* slot,
                Trainer* trainer)
      : authorizer_(authorizer), store_(store), slot_(slot), trainer_(trainer) {}

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
  uint64_t ServingVersion() const;

  const Authorizer* const authorizer_;
  Store* const store_;
  const ModelSlot* const slot_;
  Trainer* const trainer_;
  std::atomic<bool> stopping_{false};
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_MODELS_SERVICE_H_

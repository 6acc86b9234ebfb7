// maplex.v1.Predictor: answers from the served model snapshot (NB201's tabulated model, the
// function model of every other space, by the request's space); never touches the store on
// the success path and never waits for training.
#ifndef MAPLEX_SERVER_SERVICES_PREDICTOR_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_PREDICTOR_SERVICE_H_

#include <string>

#include "maplex/v1/predictor.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/limits.h"
#include "server/model_slot.h"
#include "server/model_version_cache.h"
#include "server/services/retired_devices.h"
#include "server/store/store.h"
#include "server/validation.h"

namespace maplex::server {

class PredictorService final : public maplex::v1::Predictor::Service {
 public:
  // `store` is read to explain a miss (a device registered but not yet modelled) and to
  // load a kept version a request names (other than the served one); it is null on a
  // replica, which answers only with the version it serves.
  PredictorService(const Authorizer* authorizer, const ModelSlot* slot,
                   const RetiredDevices* retired, Store* store, const Limits& limits)
      : authorizer_(authorizer),
        slot_(slot),
        retired_(retired),
        store_(store),
        limits_(limits),
        kept_(store == nullptr ? nullptr
                               : std::make_unique<ModelVersionCache>(store, kKeptModelsLoaded)) {}

  grpc::Status Predict(grpc::ServerContext* context, const maplex::v1::PredictRequest* request,
                       maplex::v1::PredictResponse* response) override;
  grpc::Status PredictStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<maplex::v1::PredictResponse, maplex::v1::PredictRequest>* stream)
      override;

  absl::Status Answer(const maplex::v1::PredictRequest& request,
                      maplex::v1::PredictResponse* response) const;

 private:
  // NotFound naming the device and the space (FailedPrecondition when the store knows the
  // device's measurements there, newer than the model `version`).
  absl::Status DeviceNotInSpace(const std::string& device_id, const core::ArchitectureSpace& space,
                                uint64_t version) const;

  // Answers a request of a function-model space (the device is known to `model`): the
  // architectures are decoded and predicted a chunk at a time, straight into the response's
  // columns (with interval_factors: the latency column and the interval's two factors) or
  // rows. Any error leaves the response for the caller to discard.
  static absl::Status PredictFunction(const core::FunctionModel& model, const std::string& device,
                                      const PredictArchitectures& asked, bool columnar,
                                      bool interval_factors, maplex::v1::PredictResponse* response);

  // Older versions held in memory at once: a chunked predict pins one version, and a few
  // NAS runs may each pin their own.
  static constexpr size_t kKeptModelsLoaded = 4;

  const Authorizer* const authorizer_;
  const ModelSlot* const slot_;
  const RetiredDevices* const retired_;
  Store* const store_;
  const Limits limits_;
  const std::unique_ptr<ModelVersionCache> kept_;  // null on a replica
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_PREDICTOR_SERVICE_H_

// maplex.v1.Ingest: measurements arrive in batches; each batch is validated whole, stored
// in one durable transaction, and only then acknowledged. The trainer hears of new data.
// An agent token may send only its own device's measurements, at its ingest rate
// (server/ingest_rate.h); a batch refused for either ends the stream, nothing of it stored.
#ifndef MAPLEX_SERVER_SERVICES_INGEST_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_INGEST_SERVICE_H_

#include "absl/time/clock.h"
#include "maplex/v1/ingest.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/ingest_rate.h"
#include "server/limits.h"
#include "server/model_slot.h"
#include "server/server_metrics.h"
#include "server/store/store.h"
#include "server/trainer.h"

namespace maplex::server {

class IngestService final : public maplex::v1::Ingest::Service {
 public:
  IngestService(const Authorizer* authorizer, Store* store, Trainer* trainer,
                const ModelSlot* slot, ServerMetrics* metrics, const Limits& limits)
      : authorizer_(authorizer),
        store_(store),
        trainer_(trainer),
        slot_(slot),
        metrics_(metrics),
        limits_(limits),
        agent_rate_(limits.agent_measurements_per_second, limits.agent_measurement_burst,
                    [] { return absl::Now(); }) {}

  grpc::Status StreamMeasurements(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<maplex::v1::MeasurementAck, maplex::v1::MeasurementBatch>* stream)
      override;
  grpc::Status ReportDescriptor(grpc::ServerContext* context,
                                const maplex::v1::ReportDescriptorRequest* request,
                                maplex::v1::ReportDescriptorResponse* response) override;
  grpc::Status NextTasks(grpc::ServerContext* context, const maplex::v1::NextTasksRequest* request,
                         maplex::v1::NextTasksResponse* response) override;

  // Validates and stores one batch; the ack names every id durably stored. Exposed for
  // tests and for in-process callers.
  absl::StatusOr<maplex::v1::MeasurementAck> StoreBatch(const maplex::v1::MeasurementBatch& batch);

 private:
  // OK when `device_id` names a registered device that is not retired.
  absl::Status CheckDeviceAccepts(const std::string& device_id, absl::string_view field);
  // OK when `caller` may send every measurement of `batch` now (device binding and rate).
  absl::Status CheckCallerMaySend(const Caller& caller, const maplex::v1::MeasurementBatch& batch);
  // NextTasks in NB201: the served model's D-optimal planner, or the fixed diverse set
  // before there is one; never an architecture the device measured already.
  absl::Status PlanNb201(const std::string& device_id, int count,
                         maplex::v1::NextTasksResponse* response);

  const Authorizer* const authorizer_;
  Store* const store_;
  Trainer* const trainer_;
  const ModelSlot* const slot_;
  ServerMetrics* const metrics_;
  const Limits limits_;
  IngestRateLimiter agent_rate_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_INGEST_SERVICE_H_

// maplex.v1.Ingest: measurements arrive in batches; each batch is validated whole, stored
// in one durable transaction, and only then acknowledged. The trainer hears of new data.
// An agent token may send only its own device's measurements, at its ingest rate
// (server/ingest_rate.h); a batch refused for either ends the stream, nothing of it stored.
//
// StreamMeasurements is pipelined: while one batch of a stream commits (its inserts and
// fsync, on the service's committer thread), the next one is parsed, checked and prepared
// (its rows' keys and its ack's ids, in gRPC's callback reactions), and committed batches
// are freed there too, so the committer does about what a bare SQLite insert loop does.
// The contract is the serial one: acks go out in order, each after its batch committed; a
// refused batch ends the stream once every batch before it is committed and acknowledged,
// and nothing of it or of anything after it is stored.
#ifndef MAPLEX_SERVER_SERVICES_INGEST_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_INGEST_SERVICE_H_

#include <functional>
#include <memory>
#include <optional>
#include <vector>

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

class IngestService final : public maplex::v1::Ingest::WithRawCallbackMethod_StreamMeasurements<
                                maplex::v1::Ingest::Service> {
 public:
  IngestService(const Authorizer* authorizer, Store* store, Trainer* trainer, const ModelSlot* slot,
                ServerMetrics* metrics, const Limits& limits);
  // Stops the committer thread. The gRPC server must be shut down first: every stream has
  // then finished, so no batch is waiting to be committed.
  ~IngestService() override;

  // Raw (bytes in, bytes out): the reactor parses each batch and serializes each ack
  // itself, on its own threads, so ThreadSanitizer sees the handover of every parsed
  // message (gRPC's own locks, in its uninstrumented libraries, it cannot see).
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamMeasurements(
      grpc::CallbackServerContext* context) override;
  grpc::Status ReportDescriptor(grpc::ServerContext* context,
                                const maplex::v1::ReportDescriptorRequest* request,
                                maplex::v1::ReportDescriptorResponse* response) override;
  grpc::Status NextTasks(grpc::ServerContext* context, const maplex::v1::NextTasksRequest* request,
                         maplex::v1::NextTasksResponse* response) override;

  // Validates and stores one batch; the ack names every id durably stored. Exposed for
  // tests and for in-process callers.
  absl::StatusOr<maplex::v1::MeasurementAck> StoreBatch(const maplex::v1::MeasurementBatch& batch);

  // Called on a stream's reaction thread after each batch of it was checked (OK, or the
  // refusal that will end the stream), before the batch goes to the committer. Tests use it
  // to see a batch checked while an earlier one commits; set before the server starts.
  void SetBatchCheckedHookForTest(std::function<void(const absl::Status&)> hook) {
    batch_checked_hook_ = std::move(hook);
  }

 private:
  class MeasurementStream;  // the reactor of one StreamMeasurements call
  class Committer;          // the thread that commits checked batches, in arrival order

  // A batch that passed every check made before the store: its rows, prepared for the
  // store, and the part of its ack that does not depend on the commit.
  struct CheckedBatch {
    Store::PreparedMeasurements rows;
    // A serialized MeasurementAck naming every id of the batch, in order. After the
    // commit the counts are appended as a second serialized MeasurementAck: protobuf
    // parses concatenated messages as one, merged. Built while the batch before commits,
    // so the committer does not build an ack of 5,000 strings.
    std::string ack_ids;
    bool replace = false;
    std::optional<int64_t> spool_depth;
  };
  // Validation, device existence and retirement: everything of StoreBatch but the commit.
  absl::StatusOr<CheckedBatch> CheckBatch(const maplex::v1::MeasurementBatch& batch);
  // Stores `batch` in one durable transaction and returns the rest of its ack: a
  // serialized MeasurementAck with the counts, to follow ack_ids.
  absl::StatusOr<std::string> CommitBatch(const CheckedBatch& batch);

  // OK when `device_id` names a registered device that is not retired.
  absl::Status CheckDeviceAccepts(const std::string& device_id, absl::string_view field);
  // OK when `caller` may send every measurement of `batch` now (device binding and rate).
  absl::Status CheckCallerMaySend(const Caller& caller, const maplex::v1::MeasurementBatch& batch);
  // NextTasks in NB201: the served model's D-optimal planner, or the fixed diverse set
  // before there is one; never an architecture the device measured already.
  absl::Status PlanNb201(const std::string& device_id, int count,
                         maplex::v1::NextTasksResponse* response);
  // NextTasks in any other space (FBNet): the served function model's planner (D-optimal
  // for the device's posterior), or its diverse-compute choice while no model serves the
  // space; never an architecture the device measured already. The strategy says which.
  absl::Status PlanFunctionSpace(const std::string& device_id, const core::ArchitectureSpace& space,
                                 int count, maplex::v1::NextTasksResponse* response);

  const Authorizer* const authorizer_;
  Store* const store_;
  Trainer* const trainer_;
  const ModelSlot* const slot_;
  ServerMetrics* const metrics_;
  const Limits limits_;
  IngestRateLimiter agent_rate_;
  std::function<void(const absl::Status&)> batch_checked_hook_;
  std::unique_ptr<Committer> committer_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_INGEST_SERVICE_H_

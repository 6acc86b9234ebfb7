#include "server/services/ingest_service.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "core/planning/measurement_planner.h"
#include "server/rpc_status.h"
#include "server/validation.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

absl::Status IngestService::CheckDeviceAccepts(const std::string& device_id,
                                               absl::string_view field) {
  // Asked for every batch: a lookup by key, not GetDevice (which counts measurements).
  absl::StatusOr<bool> accepts = store_->DeviceAcceptsData(device_id);
  if (!accepts.ok()) {
    if (absl::IsNotFound(accepts.status())) {
      return absl::NotFoundError(
          absl::StrCat(field, ": no device \"", device_id, "\" is registered"));
    }
    return accepts.status();
  }
  if (!*accepts) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": device \"", device_id, "\" is retired"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::MeasurementAck> IngestService::StoreBatch(const v1::MeasurementBatch& batch) {
  absl::StatusOr<std::vector<StoredMeasurement>> rows = ValidateMeasurementBatch(batch, limits_);
  if (!rows.ok()) return rows.status();
  absl::flat_hash_set<std::string> checked;
  for (size_t i = 0; i < rows->size(); ++i) {
    const std::string& device = (*rows)[i].device_id;
    if (!checked.insert(device).second) continue;
    if (absl::Status s = CheckDeviceAccepts(device, absl::StrCat("measurements[", i, "].device_id"));
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<Store::IngestResult> stored = store_->AddMeasurements(*rows, batch.replace());
  if (!stored.ok()) return stored.status();
  v1::MeasurementAck ack;
  for (const StoredMeasurement& row : *rows) ack.add_committed_ids(row.id);
  ack.set_inserted(stored->inserted);
  ack.set_already_stored(stored->already_stored);
  metrics_->OnMeasurementsStored(stored->inserted, stored->already_stored);
  if (batch.has_spool_depth() && batch.measurements_size() > 0) {
    metrics_->OnSpoolDepthReported(batch.measurements(0).device_id(), batch.spool_depth());
  }
  // A batch that only replayed stored ids changed nothing the model reads.
  if (stored->inserted > 0 || stored->replaced > 0) trainer_->NotifyNewData();
  return ack;
}

absl::Status IngestService::CheckCallerMaySend(const Caller& caller,
                                               const v1::MeasurementBatch& batch) {
  if (batch.replace() && caller.role != v1::ROLE_OPERATOR) {
    return absl::PermissionDeniedError(
        "replace: only an operator may replace stored measurements (maplex import --replace)");
  }
  if (caller.role != v1::ROLE_AGENT) return absl::OkStatus();
  for (int i = 0; i < batch.measurements_size(); ++i) {
    if (absl::Status s = Authorizer::CheckDevice(caller, batch.measurements(i).device_id(),
                                                 absl::StrCat("measurements[", i, "].device_id"));
        !s.ok()) {
      return s;
    }
  }
  return agent_rate_.Take(caller.token_id, batch.measurements_size());
}

Status IngestService::StreamMeasurements(
    ServerContext* context,
    grpc::ServerReaderWriter<v1::MeasurementAck, v1::MeasurementBatch>* stream) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Ingest/StreamMeasurements");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  v1::MeasurementBatch batch;
  while (stream->Read(&batch)) {
    if (absl::Status s = CheckCallerMaySend(*caller, batch); !s.ok()) return ToGrpcStatus(s);
    absl::StatusOr<v1::MeasurementAck> ack = StoreBatch(batch);
    // A rejected batch ends the stream; the agent keeps it (it was never acknowledged).
    if (!ack.ok()) return ToGrpcStatus(ack.status());
    if (!stream->Write(*ack)) break;  // the client went away; what was stored stays stored
  }
  return Status::OK;
}

Status IngestService::ReportDescriptor(ServerContext* context,
                                       const v1::ReportDescriptorRequest* request,
                                       v1::ReportDescriptorResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Ingest/ReportDescriptor");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status s = Authorizer::CheckDevice(*caller, request->device_id(), "device_id");
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (absl::Status s = ValidateDescriptor(*request, limits_); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = CheckDeviceAccepts(request->device_id(), "device_id"); !s.ok()) {
    return ToGrpcStatus(s);
  }
  int64_t now = absl::ToUnixMillis(absl::Now());
  absl::StatusOr<bool> changed = store_->PutDescriptor(*request, now);
  if (!changed.ok()) return ToGrpcStatus(changed.status());
  // An agent reports its descriptor at every start: the same values need no new model.
  if (*changed) trainer_->NotifyNewData();
  response->set_reported_at_unix_ms(now);
  return Status::OK;
}

}  // namespace maplex::server

namespace maplex::server {

grpc::Status IngestService::NextTasks(grpc::ServerContext* context,
                                      const v1::NextTasksRequest* request,
                                      v1::NextTasksResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Ingest/NextTasks");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status s = Authorizer::CheckDevice(*caller, request->device_id(), "device_id");
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (absl::Status s = ValidateIdentifier(request->device_id(), "device_id", limits_); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (request->count() < 1 || request->count() > limits_.max_next_tasks) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "count: ", request->count(), " is outside 1..", limits_.max_next_tasks)));
  }
  if (absl::Status s = CheckDeviceAccepts(request->device_id(), "device_id"); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<const core::ArchitectureSpace*> space =
      ValidateSpace(request->space(), "space", limits_);
  if (!space.ok()) return ToGrpcStatus(space.status());
  // The planner of the request's space: NB201's comes with the served model; a space gets
  // planned by adding its planner here.
  if (*space != &core::Nb201Space::Get()) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        absl::StrCat("space: no planner for space ", SpaceName(**space), " yet")));
  }
  return ToGrpcStatus(PlanNb201(request->device_id(), request->count(), response));
}

absl::Status IngestService::PlanNb201(const std::string& device_id, int count,
                                      v1::NextTasksResponse* response) {
  const core::Nb201Space& space = core::Nb201Space::Get();
  absl::StatusOr<std::vector<core::Architecture>> stored =
      store_->MeasuredArchitectures(device_id, space);
  if (!stored.ok()) return stored.status();
  std::vector<int32_t> measured;
  measured.reserve(stored->size());
  for (const core::Architecture& a : *stored) measured.push_back(space.IndexOf(a));
  std::sort(measured.begin(), measured.end());
  std::shared_ptr<const ServedModel> served = slot_->Get();
  std::vector<int32_t> next;
  if (served != nullptr && served->planner != nullptr) {
    next = served->planner->Next(measured, count);
    response->set_strategy("d-optimal");
  } else {
    // Without reference devices: the fixed diverse set, less what is measured already.
    std::vector<int32_t> diverse =
        core::DiverseArchitectures(space, count + static_cast<int>(measured.size()));
    for (int32_t a : diverse) {
      if (static_cast<int>(next.size()) == count) break;
      if (!std::binary_search(measured.begin(), measured.end(), a)) next.push_back(a);
    }
    response->set_strategy("diverse-compute");
  }
  for (int32_t a : next) response->add_archs()->set_index(a);
  return absl::OkStatus();
}

}  // namespace maplex::server

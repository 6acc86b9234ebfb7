#include "server/services/ingest_service.h"

#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "core/planning/measurement_planner.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
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

namespace {

// The committed_ids of a MeasurementAck naming `rows`' ids, serialized: what the ack's
// serialization would write for them, without a MeasurementAck of 5,000 allocated strings.
std::string SerializedAckIds(const std::vector<StoredMeasurement>& rows) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const StoredMeasurement& row : rows) {
      google::protobuf::internal::WireFormatLite::WriteString(
          v1::MeasurementAck::kCommittedIdsFieldNumber, row.id, &coded);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<IngestService::CheckedBatch> IngestService::CheckBatch(
    const v1::MeasurementBatch& batch) {
  absl::StatusOr<std::vector<StoredMeasurement>> rows = ValidateMeasurementBatch(batch, limits_);
  if (!rows.ok()) return rows.status();
  absl::flat_hash_set<absl::string_view> checked;
  for (size_t i = 0; i < rows->size(); ++i) {
    const std::string& device = (*rows)[i].device_id;
    // A batch is usually one device's: no hashing for a row of the same as the one before.
    if (i > 0 && device == (*rows)[i - 1].device_id) continue;
    if (!checked.insert(device).second) continue;
    if (absl::Status s = CheckDeviceAccepts(device, absl::StrCat("measurements[", i, "].device_id"));
        !s.ok()) {
      return s;
    }
  }
  std::string ack_ids = SerializedAckIds(*rows);
  std::optional<int64_t> spool_depth;
  if (batch.has_spool_depth()) spool_depth = batch.spool_depth();
  return CheckedBatch{Store::PreparedMeasurements(*std::move(rows)), std::move(ack_ids),
                      batch.replace(), spool_depth};
}

absl::StatusOr<std::string> IngestService::CommitBatch(const CheckedBatch& batch) {
  absl::StatusOr<Store::IngestResult> stored = store_->AddMeasurements(batch.rows, batch.replace);
  if (!stored.ok()) return stored.status();
  v1::MeasurementAck counts;
  counts.set_inserted(stored->inserted);
  counts.set_already_stored(stored->already_stored);
  const std::vector<StoredMeasurement>& rows = batch.rows.rows();
  metrics_->OnMeasurementsStored(stored->inserted, stored->already_stored);
  if (batch.spool_depth.has_value() && !rows.empty()) {
    metrics_->OnSpoolDepthReported(rows.front().device_id, *batch.spool_depth);
  }
  // A batch that only replayed stored ids changed nothing the model reads.
  if (stored->inserted > 0 || stored->replaced > 0) trainer_->NotifyNewData();
  return counts.SerializeAsString();
}

absl::StatusOr<v1::MeasurementAck> IngestService::StoreBatch(const v1::MeasurementBatch& batch) {
  absl::StatusOr<CheckedBatch> checked = CheckBatch(batch);
  if (!checked.ok()) return checked.status();
  absl::StatusOr<std::string> counts = CommitBatch(*checked);
  if (!counts.ok()) return counts.status();
  // The bytes a stream's ack carries, parsed as its client does.
  v1::MeasurementAck ack;
  if (!ack.ParseFromString(absl::StrCat(checked->ack_ids, *counts))) {
    return absl::InternalError("ack: does not parse");
  }
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
    const std::string& device = batch.measurements(i).device_id();
    // The field's name is built only for the error.
    if (device == caller.device_id) continue;
    if (absl::Status s = Authorizer::CheckDevice(caller, device,
                                                 absl::StrCat("measurements[", i, "].device_id"));
        !s.ok()) {
      return s;
    }
  }
  return agent_rate_.Take(caller.token_id, batch.measurements_size());
}

namespace {

// Batches of one stream that were checked and whose ack is not yet written: e.g. one
// committing and one waiting for the committer, or one committing and the ack of the one
// before on its way. The next batch is read only when fewer are, so a stream holds at most
// three batches (these two and the one being read), and a client that stops reading acks
// stops the server reading its batches, as the serial handler's blocking Write did.
constexpr int kMaxUnacknowledged = 2;

}  // namespace

// One thread for every stream: the store commits one transaction at a time anyway (its
// write mutex), so more threads would only wait for it; the streams' own order is kept
// because jobs run in the order they were submitted.
class IngestService::Committer {
 public:
  explicit Committer(IngestService* service) : service_(service), thread_([this] { Run(); }) {}
  ~Committer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Takes a reference of `stream`, released by its OnCommitted.
  void Submit(MeasurementStream* stream, CheckedBatch batch) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(Job{stream, std::move(batch)});
    }
    cv_.notify_one();
  }

 private:
  struct Job {
    MeasurementStream* stream;
    CheckedBatch batch;
  };

  void Run();

  IngestService* const service_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// The reactor of one StreamMeasurements call. gRPC's reactions (on its callback threads)
// read and check batches and write acks; the committer thread commits the checked batches
// and hands back their acks (OnCommitted). Everything below is guarded by mu_; Start*,
// Finish and reactions never run inline in one another (gRPC schedules the reactions of a
// reactor that is not inlineable), so calling Start* and Finish under mu_ is safe.
//
// Lifetime: gRPC holds one reference until OnDone, the committer one per batch it holds;
// the last one released deletes the reactor.
class IngestService::MeasurementStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // A stream of an authorized caller: starts reading its first batch.
  MeasurementStream(IngestService* service, Caller caller)
      : service_(service), caller_(std::move(caller)) {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = true;
    StartRead(&received_);
  }
  // A call refused before anything was read.
  explicit MeasurementStream(const grpc::Status& refusal) : service_(nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    Finish(refusal);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed, or the call ended.
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = false;
      input_ended_ = true;
      MaybeFinishLocked();
      return;
    }
    {
      // gRPC runs this reaction after the StartRead that asked for it (made under mu_),
      // ordered by its own locks, which ThreadSanitizer cannot see in gRPC's uninstrumented
      // libraries; taking mu_ shows it that order, so the previous batch's check (on
      // another thread) visibly happens before this one's parse into the same message.
      std::lock_guard<std::mutex> lock(mu_);
    }
    // received_ and incoming_ are ours until the next StartRead, which needs reading_ to be
    // false: parse and check without the lock, so acks of earlier batches go out meanwhile.
    absl::StatusOr<CheckedBatch> batch = ParseAndCheck();
    if (service_->batch_checked_hook_) service_->batch_checked_hook_(batch.status());
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    if (!batch.ok()) {
      // Refused: the batches before it are still committed and acknowledged, then the
      // stream ends with the refusal. A commit that failed first has the last word (the
      // serial handler would never have read this batch).
      if (end_.ok()) end_ = batch.status();
      input_ended_ = true;
      MaybeFinishLocked();
      return;
    }
    if (stop_committing_ || finished_) {
      // An earlier commit failed or the client went away: this batch is not stored.
      input_ended_ = true;
      MaybeFinishLocked();
      return;
    }
    ++unacknowledged_;
    refs_.fetch_add(1, std::memory_order_relaxed);
    service_->committer_->Submit(this, *std::move(batch));
    StartNextReadLocked();
  }

  void OnWriteDone(bool ok) override {
    // Committed batches are freed here, on gRPC's thread after the lock, rather than on
    // the committer: 5,000 rows are some 20,000 frees, time the next commit would wait.
    std::vector<CheckedBatch> spent;
    std::lock_guard<std::mutex> lock(mu_);
    spent.swap(spent_);
    writing_ = false;
    acks_.pop_front();
    if (!ok) {
      // The client went away; what was stored stays stored, nothing more is.
      stop_committing_ = true;
      input_ended_ = true;
      acks_.clear();
    } else if (!acks_.empty()) {
      writing_ = true;
      StartWrite(&acks_.front());
    }
    StartNextReadLocked();
    MaybeFinishLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    stop_committing_ = true;
    input_ended_ = true;
    if (end_.ok()) end_ = absl::CancelledError("the call was cancelled");
    MaybeFinishLocked();
  }

  void OnDone() override {
    {
      // gRPC calls this after every reaction has returned, ordered by its own
      // (uninstrumented) locks; taking mu_, which each reaction held last, shows
      // ThreadSanitizer that order, so the delete in Release does not look like a race with
      // the last reaction's use of received_/incoming_.
      std::lock_guard<std::mutex> lock(mu_);
    }
    Release();
  }

  // Whether the committer should still store this stream's next batch.
  bool ShouldCommit() {
    std::lock_guard<std::mutex> lock(mu_);
    return !stop_committing_;
  }

  // From the committer, for every submitted batch in order: the batch (handed back to be
  // freed on gRPC's threads) and the rest of its ack, its commit's error, or nullopt when
  // it was skipped (ShouldCommit was false). Releases the committer's reference: the
  // reactor may be gone when this returns.
  void OnCommitted(CheckedBatch batch, std::optional<absl::StatusOr<std::string>> result) {
    std::optional<grpc::ByteBuffer> ack;
    if (result.has_value() && result->ok()) {
      // The ack: the batch's ids, serialized before its commit, then its counts.
      const grpc::Slice bytes[] = {grpc::Slice(batch.ack_ids), grpc::Slice(**result)};
      ack.emplace(bytes, 2);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --unacknowledged_;
      if (result.has_value() && !result->ok()) {
        // Nothing after a failed batch may be stored: the agent sends it again.
        end_ = result->status();
        stop_committing_ = true;
      } else if (result.has_value() && !stop_committing_) {
        acks_.push_back(*std::move(ack));
        if (!writing_) {
          writing_ = true;
          StartWrite(&acks_.front());
        }
      }
      spent_.push_back(std::move(batch));  // freed by the next OnWriteDone
      StartNextReadLocked();
      MaybeFinishLocked();
    }
    Release();
  }

 private:
  // The batch just received, parsed (as gRPC's typed handlers do: INTERNAL when it is not
  // a MeasurementBatch) and checked.
  absl::StatusOr<CheckedBatch> ParseAndCheck() {
    grpc::Status parsed =
        grpc::SerializationTraits<v1::MeasurementBatch>::Deserialize(&received_, &incoming_);
    if (!parsed.ok()) return absl::InternalError(parsed.error_message());
    if (absl::Status s = service_->CheckCallerMaySend(caller_, incoming_); !s.ok()) return s;
    return service_->CheckBatch(incoming_);
  }

  void StartNextReadLocked() {
    if (reading_ || input_ended_ || finished_ || stop_committing_ || !end_.ok() ||
        unacknowledged_ + static_cast<int>(acks_.size()) >= kMaxUnacknowledged) {
      return;
    }
    reading_ = true;
    StartRead(&received_);
  }

  // Finishes once nothing is left to do: no more input (or a refusal or failure), every
  // batch handed to the committer back, every ack written. A read may still be pending;
  // Finish ends it (OnReadDone(false)).
  void MaybeFinishLocked() {
    if (finished_ || writing_ || unacknowledged_ > 0) return;
    if (!input_ended_ && end_.ok()) return;
    finished_ = true;
    Finish(ToGrpcStatus(end_));
  }

  void Release() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  IngestService* const service_;
  const Caller caller_;
  std::atomic<int> refs_{1};  // gRPC's until OnDone, plus one per batch at the committer

  std::mutex mu_;
  grpc::ByteBuffer received_;          // the batch being read, as received
  v1::MeasurementBatch incoming_;      // the same, parsed and being checked
  std::deque<grpc::ByteBuffer> acks_;  // to write, in order; the front is being written
  std::vector<CheckedBatch> spent_;    // committed (or skipped), to be freed
  absl::Status end_;                   // the status to finish with
  int unacknowledged_ = 0;             // at the committer, not yet handed back
  bool reading_ = false;
  bool writing_ = false;
  bool input_ended_ = false;      // no further batch will be read
  bool stop_committing_ = false;  // a commit failed or the client is gone
  bool finished_ = false;
};

void IngestService::Committer::Run() {
  pthread_setname_np(pthread_self(), "ingest-commit");  // for profiles (perf --sort comm)
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and every job was handed back
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    std::optional<absl::StatusOr<std::string>> result;
    if (job.stream->ShouldCommit()) result = service_->CommitBatch(job.batch);
    job.stream->OnCommitted(std::move(job.batch), std::move(result));
    lock.lock();
  }
}

IngestService::IngestService(const Authorizer* authorizer, Store* store, Trainer* trainer,
                             const ModelSlot* slot, ServerMetrics* metrics, const Limits& limits)
    : authorizer_(authorizer),
      store_(store),
      trainer_(trainer),
      slot_(slot),
      metrics_(metrics),
      limits_(limits),
      agent_rate_(limits.agent_measurements_per_second, limits.agent_measurement_burst,
                  [] { return absl::Now(); }),
      committer_(std::make_unique<Committer>(this)) {}

IngestService::~IngestService() = default;

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::StreamMeasurements(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<Caller> caller =
      authorizer_->Authorize(*context, "/maplex.v1.Ingest/StreamMeasurements");
  if (!caller.ok()) return new MeasurementStream(ToGrpcStatus(caller.status()));
  return new MeasurementStream(this, *std::move(caller));
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
  // The planner of the request's space: NB201's measurement planner, or the function
  // planner of any other space; both come with the served model.
  if (*space != &core::Nb201Space::Get()) {
    return ToGrpcStatus(
        PlanFunctionSpace(request->device_id(), **space, request->count(), response));
  }
  return ToGrpcStatus(PlanNb201(request->device_id(), request->count(), response));
}

absl::Status IngestService::PlanFunctionSpace(const std::string& device_id,
                                              const core::ArchitectureSpace& space, int count,
                                              v1::NextTasksResponse* response) {
  absl::StatusOr<std::vector<core::Architecture>> measured =
      store_->MeasuredArchitectures(device_id, space);
  if (!measured.ok()) return measured.status();
  std::shared_ptr<const ServedModel> served = slot_->Get();
  const ServedFunctionModel* function =
      served == nullptr ? nullptr : served->FunctionModelOf(space);
  // Seeded by how much the device measured, so that a device that has not sent its last
  // tasks yet is asked for the same ones again, and one that has gets new ones.
  const uint64_t seed = 1 + measured->size();
  core::FunctionPlan plan;
  if (function != nullptr && function->planner != nullptr) {
    plan = function->planner->Next(device_id, *measured, count, seed);
  } else {
    // No model serves the space yet (no reference device): the planner's diverse-compute
    // choice needs no references.
    absl::StatusOr<core::FunctionPlanner> fallback = core::FunctionPlanner::Build(space, {}, {});
    if (!fallback.ok()) return fallback.status();
    plan = fallback->Next(device_id, *measured, count, seed);
  }
  response->set_strategy(plan.strategy);
  for (const core::Architecture& a : plan.archs) {
    v1::Architecture* out = response->add_archs();
    out->set_space(std::string(space.name()));
    out->set_canonical(space.Format(a));
  }
  return absl::OkStatus();
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

#include "agent/uplink/uplink.h"

#include <grpcpp/client_context.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "platform/log.h"

namespace maplex::agent {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return s.ok() ? absl::OkStatus()
                : absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// The index i of the first "measurements[i]" in a refusal (the server names the offending
// field that way), or -1.
int RefusedIndex(absl::string_view message) {
  constexpr absl::string_view kField = "measurements[";
  size_t at = message.find(kField);
  if (at == absl::string_view::npos) return -1;
  absl::string_view rest = message.substr(at + kField.size());
  size_t end = rest.find(']');
  int index = -1;
  if (end == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(0, end), &index)) return -1;
  return index;
}

}  // namespace

absl::Duration Backoff::Ceiling() const {
  absl::Duration d = initial_;
  for (int i = 0; i < attempt_ && d < max_; ++i) d *= 2;
  return std::min(d, max_);
}

absl::Duration Backoff::Next() {
  const absl::Duration ceiling = Ceiling();
  ++attempt_;
  std::uniform_real_distribution<double> share(0.0, 1.0);
  return ceiling * share(rng_);
}

bool IsPermanentRefusal(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

Uplink::Uplink(Spool* spool, std::shared_ptr<grpc::Channel> channel, UplinkOptions options)
    : spool_(spool),
      stub_(maplex::v1::Ingest::NewStub(channel)),
      options_(std::move(options)),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.seed),
      batch_size_(std::max(1, options_.batch_size)) {}

absl::Status Uplink::SendOverOneStream(std::vector<std::string>* in_flight) {
  in_flight->clear();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.stream_timeout));
  auto stream = stub_->StreamMeasurements(&context);
  auto finish = [&](absl::Status local) {
    stream->WritesDone();
    absl::Status remote = FromGrpc(stream->Finish());
    return remote.ok() ? local : remote;
  };
  while (true) {
    absl::StatusOr<std::vector<maplex::v1::Measurement>> pending = spool_->Pending(batch_size_);
    if (!pending.ok()) return finish(pending.status());
    if (pending->empty()) return finish(absl::OkStatus());
    absl::StatusOr<int64_t> depth = spool_->Depth();
    if (!depth.ok()) return finish(depth.status());
    maplex::v1::MeasurementBatch batch;
    for (auto& m : *pending) {
      in_flight->push_back(m.id());
      *batch.add_measurements() = std::move(m);
    }
    batch.set_spool_depth(*depth);
    maplex::v1::MeasurementAck ack;
    // One batch in flight: the ack tells exactly what may leave the spool.
    if (!stream->Write(batch) || !stream->Read(&ack)) {
      return finish(absl::UnavailableError("the stream broke before the batch was acknowledged"));
    }
    if (absl::Status s = spool_->Remove(ack.committed_ids()); !s.ok()) return finish(s);
    in_flight->clear();
    acked_ += ack.committed_ids_size();
    backoff_.Reset();
  }
}

absl::Status Uplink::DeadLetter(const std::vector<std::string>& in_flight,
                                const absl::Status& refusal) {
  // The server refuses a batch whole but names the first offending measurement; only that
  // one is dead-lettered, the rest go out again in the next batch.
  std::vector<std::string> refused = in_flight;
  const int index = RefusedIndex(refusal.message());
  if (index >= 0 && index < static_cast<int>(in_flight.size())) refused = {in_flight[index]};
  std::string reason = refusal.ToString();
  if (reason.size() > 1024) reason.resize(1024);
  absl::StatusOr<int64_t> dropped =
      spool_->MoveToDeadLetters(refused, reason, options_.now_unix_ms());
  if (!dropped.ok()) return dropped.status();
  dead_lettered_ += static_cast<int64_t>(refused.size());
  LogWarning("dead_lettered", {{"measurements", absl::StrCat(refused.size())},
                               {"first_id", refused.front()},
                               {"reason", reason}});
  if (*dropped > 0) {
    LogWarning("dead_letters_dropped", {{"oldest_dropped", absl::StrCat(*dropped)}});
  }
  return absl::OkStatus();
}

absl::Status Uplink::SendPending() {
  while (true) {
    std::vector<std::string> in_flight;
    absl::Status s = SendOverOneStream(&in_flight);
    if (s.ok()) {
      batch_size_ = std::max(1, options_.batch_size);
      return s;
    }
    if (in_flight.empty()) return s;  // nothing was refused: the server was never reached
    if (IsPermanentRefusal(s)) {
      // Every refusal removes at least one measurement from the queue, so this ends.
      if (absl::Status d = DeadLetter(in_flight, s); !d.ok()) return d;
      continue;
    }
    if (s.code() == absl::StatusCode::kResourceExhausted && batch_size_ > 1) {
      batch_size_ = std::max(1, static_cast<int>(in_flight.size()) / 2);
      LogWarning("uplink_smaller_batches",
                 {{"batch_size", absl::StrCat(batch_size_)}, {"error", s.ToString()}});
      continue;
    }
    return s;
  }
}

absl::Status Uplink::Drain(absl::Duration timeout) {
  const int64_t deadline = options_.clock->NowNanos() + absl::ToInt64Nanoseconds(timeout);
  while (true) {
    absl::Status s = SendPending();
    if (s.ok()) return s;
    absl::Duration wait = backoff_.Next();
    if (options_.clock->NowNanos() + absl::ToInt64Nanoseconds(wait) > deadline) {
      return absl::Status(s.code(), absl::StrCat("gave up delivering: ", s.message()));
    }
    LogInfo("uplink_retry",
            {{"error", s.ToString()}, {"wait_ms", absl::StrCat(absl::ToInt64Milliseconds(wait))}});
    options_.sleep(wait);
  }
}

absl::Duration Uplink::Tick(absl::Duration idle) {
  absl::StatusOr<int64_t> depth = spool_->Depth();
  if (depth.ok() && *depth == 0) return idle;
  absl::Status s = SendPending();
  if (s.ok()) {
    backoff_.Reset();
    return idle;
  }
  absl::Duration wait = backoff_.Next();
  LogWarning("uplink_retry",
             {{"error", s.ToString()}, {"wait_ms", absl::StrCat(absl::ToInt64Milliseconds(wait))}});
  return wait;
}

}  // namespace maplex::agent

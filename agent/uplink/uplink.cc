#include "agent/uplink/uplink.h"

#include <grpcpp/client_context.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace maplex::agent {

absl::Duration Backoff::Next() {
  absl::Duration d = initial_;
  for (int i = 0; i < attempt_ && d < max_; ++i) d *= 2;
  d = std::min(d, max_);
  ++attempt_;
  std::uniform_real_distribution<double> factor(1 - jitter_, 1 + jitter_);
  return d * factor(rng_);
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
      backoff_(options_.initial_backoff, options_.max_backoff, options_.jitter, options_.seed) {}

absl::Status Uplink::SendPending() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.stream_timeout));
  auto stream = stub_->StreamMeasurements(&context);
  auto finish = [&](absl::Status local) {
    stream->WritesDone();
    grpc::Status s = stream->Finish();
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return local;
  };
  while (true) {
    absl::StatusOr<std::vector<maplex::v1::Measurement>> pending =
        spool_->Pending(options_.batch_size);
    if (!pending.ok()) return finish(pending.status());
    if (pending->empty()) return finish(absl::OkStatus());
    absl::StatusOr<int64_t> depth = spool_->Depth();
    if (!depth.ok()) return finish(depth.status());
    maplex::v1::MeasurementBatch batch;
    for (auto& m : *pending) *batch.add_measurements() = std::move(m);
    batch.set_spool_depth(*depth);
    maplex::v1::MeasurementAck ack;
    // One batch in flight: the ack tells exactly what may leave the spool.
    if (!stream->Write(batch) || !stream->Read(&ack)) {
      return finish(absl::UnavailableError("the stream broke before the batch was acknowledged"));
    }
    if (absl::Status s = spool_->Remove(ack.committed_ids()); !s.ok()) return finish(s);
    acked_ += ack.committed_ids_size();
    backoff_.Reset();
  }
}

absl::Status Uplink::Drain(absl::Time deadline) {
  while (true) {
    absl::Status s = SendPending();
    if (s.ok() || !IsRetryable(s)) return s;
    absl::Duration wait = backoff_.Next();
    if (absl::Now() + wait > deadline) {
      return absl::Status(s.code(), absl::StrCat("gave up delivering: ", s.message()));
    }
    options_.sleep(wait);
  }
}

}  // namespace maplex::agent

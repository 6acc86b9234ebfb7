// Delivers the spool to the server over Ingest.StreamMeasurements. A measurement leaves
// the spool only when an ack names it; a broken connection is retried with jittered
// exponential backoff; replays are harmless because the server ignores ids it has.
//
//   Uplink uplink(spool, grpc::CreateChannel(address, creds), UplinkOptions());
//   absl::Status s = uplink.Drain(absl::Now() + absl::Minutes(5));  // empty the spool
#ifndef MAPLEX_AGENT_UPLINK_UPLINK_H_
#define MAPLEX_AGENT_UPLINK_UPLINK_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/spool/spool.h"
#include "maplex/v1/ingest.grpc.pb.h"

namespace maplex::agent {

// Delays between attempts: min(max, initial * 2^attempt), scaled by a uniform factor in
// [1 - jitter, 1 + jitter] so that many agents do not reconnect in lockstep.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, double jitter, uint64_t seed)
      : initial_(initial), max_(max), jitter_(jitter), rng_(seed) {}
  absl::Duration Next();
  void Reset() { attempt_ = 0; }

 private:
  absl::Duration initial_, max_;
  double jitter_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
};

struct UplinkOptions {
  int batch_size = 200;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);
  double jitter = 0.5;
  uint64_t seed = 1;
  // How long one stream may take before it is abandoned and retried.
  absl::Duration stream_timeout = absl::Minutes(2);
  // The sleep between attempts; tests replace it.
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
};

// Whether a failed delivery is worth retrying (the server or the network was unwell) or
// the server refused the data itself (it stays spooled, and the error is reported).
bool IsRetryable(const absl::Status& status);

class Uplink {
 public:
  Uplink(Spool* spool, std::shared_ptr<grpc::Channel> channel, UplinkOptions options);

  // One stream: sends everything pending, batch by batch, removing each acked batch from
  // the spool. OK when the spool is empty; otherwise the stream's error.
  absl::Status SendPending();

  // SendPending until the spool is empty, retrying retryable errors with backoff until
  // `deadline`. Returns the last error when it gives up.
  absl::Status Drain(absl::Time deadline);

  int64_t acked() const { return acked_; }

 private:
  Spool* const spool_;
  std::unique_ptr<maplex::v1::Ingest::Stub> stub_;
  UplinkOptions options_;
  Backoff backoff_;
  int64_t acked_ = 0;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_UPLINK_UPLINK_H_

// Delivers the spool to the server over Ingest.StreamMeasurements. A measurement leaves
// the spool only when an ack names it, or when the server refused it for good: then it
// moves to the spool's dead letters (with the refusal and its time) so that the
// measurements behind it still flow. Everything else (server down, network, overload,
// a revoked token) is retried with jittered exponential backoff; replays are harmless
// because the server ignores ids it has.
//
//   Uplink uplink(spool, grpc::CreateChannel(address, creds), UplinkOptions());
//   absl::Status s = uplink.Drain(absl::Minutes(5));  // empty the spool
//   // as a daemon:
//   while (!stop) Sleep(uplink.Tick(absl::Milliseconds(500)));
#ifndef MAPLEX_AGENT_UPLINK_UPLINK_H_
#define MAPLEX_AGENT_UPLINK_UPLINK_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/common/clock.h"
#include "agent/spool/spool.h"
#include "maplex/v1/ingest.grpc.pb.h"

namespace maplex::agent {

// Delays between attempts with "full jitter" (M. Brooker, "Exponential Backoff And
// Jitter", AWS Architecture Blog, 2015): attempt n waits a uniform draw from
// [0, min(max, initial * 2^n)], so that many agents cut off by one outage do not come
// back in lockstep. Not thread-safe.
class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
      : initial_(initial), max_(max), rng_(seed) {}
  // The next delay; advances the attempt count.
  absl::Duration Next();
  // The upper bound of the delay Next() returns next: min(max, initial * 2^attempt).
  absl::Duration Ceiling() const;
  void Reset() { attempt_ = 0; }

 private:
  absl::Duration initial_, max_;
  std::mt19937_64 rng_;
  int attempt_ = 0;
};

struct UplinkOptions {
  int batch_size = 200;
  absl::Duration initial_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(30);
  uint64_t seed = 1;
  // How long one stream may take before it is abandoned and retried.
  absl::Duration stream_timeout = absl::Minutes(2);
  // Measures Drain's timeout; tests pass a ManualClock that `sleep` advances.
  const Clock* clock = &RealClock();
  // The sleep between attempts; tests replace it.
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
  // Wall-clock time stamped on dead letters.
  std::function<int64_t()> now_unix_ms = [] { return absl::ToUnixMillis(absl::Now()); };
};

// Whether the server refused the data itself, for good: sending it again unchanged will
// be refused again, so it goes to the dead letters. These are INVALID_ARGUMENT (a field
// out of bounds), NOT_FOUND (unknown device), FAILED_PRECONDITION (retired device),
// PERMISSION_DENIED (the token may not send for that device), ALREADY_EXISTS and
// OUT_OF_RANGE. Not refusals: UNAUTHENTICATED (the credential is wrong, not the data:
// every batch would be refused alike, so they wait until the token is fixed),
// RESOURCE_EXHAUSTED (rate and size limits: later, or smaller, it passes), UNAVAILABLE,
// DEADLINE_EXCEEDED and every other code.
bool IsPermanentRefusal(const absl::Status& status);

// Whether a failed call is worth repeating as it is (the server or the network was
// unwell). Used for the agent's enrollment calls.
bool IsRetryable(const absl::Status& status);

class Uplink {
 public:
  Uplink(Spool* spool, std::shared_ptr<grpc::Channel> channel, UplinkOptions options);

  // Sends everything pending, batch by batch, removing each acked batch from the spool.
  // A refused batch is dead-lettered (only the measurement the refusal names, when it
  // names one as measurements[i]) and sending goes on over a new stream. A batch refused
  // with RESOURCE_EXHAUSTED is split in half and sent again at once, down to one
  // measurement (a server with a stricter batch or message limit). OK when the spool is
  // empty; otherwise the first error that is not a refusal.
  absl::Status SendPending();

  // SendPending until the spool is empty, retrying every failure with backoff while
  // `timeout` (measured on options.clock) allows. Returns the last error when it gives up.
  absl::Status Drain(absl::Duration timeout);

  // One step of a daemon: sends what is pending, if anything. Returns how long to wait
  // before the next step: `idle` after a success or with nothing to send, the next
  // backoff delay after a failure.
  absl::Duration Tick(absl::Duration idle);

  int64_t acked() const { return acked_; }
  int64_t dead_lettered() const { return dead_lettered_; }
  // The batch size in use: options.batch_size, or less after RESOURCE_EXHAUSTED refusals
  // (back to options.batch_size once the spool was emptied).
  int batch_size() const { return batch_size_; }

 private:
  // One stream. On failure, `in_flight` holds the ids of the batch that was sent and not
  // acknowledged (empty when the failure came before a batch was sent).
  absl::Status SendOverOneStream(std::vector<std::string>* in_flight);
  absl::Status DeadLetter(const std::vector<std::string>& in_flight, const absl::Status& refusal);

  Spool* const spool_;
  std::unique_ptr<maplex::v1::Ingest::Stub> stub_;
  UplinkOptions options_;
  Backoff backoff_;
  int batch_size_;
  int64_t acked_ = 0;
  int64_t dead_lettered_ = 0;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_UPLINK_UPLINK_H_

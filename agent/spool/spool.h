// The agent's on-disk spool: every measurement is written here, durably, before it is
// sent, and removed only once the server acknowledged it. A killed agent restarts with
// its spool intact and sends what is left; the server ignores ids it stored already.
//
//   absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open("/var/lib/maplex-agent/spool.db");
//   (*spool)->Add(measurement);                 // on disk when this returns OK
//   auto batch = (*spool)->Pending(500);        // oldest first
//   ... send, receive the ack ...
//   (*spool)->Remove(ack.committed_ids());
//   // or, when the server refused them for good (see agent/uplink/uplink.h):
//   (*spool)->MoveToDeadLetters({"id-1"}, "INVALID_ARGUMENT: measurements[0].stats...");
//
// Measurements the server refused for good leave the queue for a dead-letter table in the
// same file, with the refusal and its time, so that later measurements still flow and an
// operator can look at, requeue or clear them (docs/RELIABILITY.md, "Agents never wedge").
// The file carries a schema version (PRAGMA user_version); older spools are migrated
// forward at Open without losing a row.
#ifndef MAPLEX_AGENT_SPOOL_SPOOL_H_
#define MAPLEX_AGENT_SPOOL_SPOOL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "maplex/v1/ingest.pb.h"

struct sqlite3;

namespace maplex::agent {

struct SpoolOptions {
  // Most dead letters kept; beyond it the oldest are dropped (and counted in the log by
  // the caller). Bounds the file when a server refuses everything for a long time.
  int64_t max_dead_letters = 10000;
};

// One measurement the server refused for good.
struct DeadLetter {
  maplex::v1::Measurement measurement;
  std::string reason;  // the server's status, e.g. "NOT_FOUND: measurements[0]..."
  int64_t refused_at_unix_ms = 0;
};

class Spool {
 public:
  // The schema this build writes. 0: the queue only (before dead letters); 1: + dead_letters.
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the spool file, migrating an older schema forward in one transaction.
  // FailedPrecondition for a file that is not a spool or has a newer schema.
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const std::string& path,
                                                     SpoolOptions options = SpoolOptions());
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends `m` (its id must be set) and returns once it is on disk. Adding an id that is
  // spooled already is a no-op.
  absl::Status Add(const maplex::v1::Measurement& m);

  // Up to `limit` spooled measurements, oldest first.
  absl::StatusOr<std::vector<maplex::v1::Measurement>> Pending(int limit);

  // Forgets acknowledged measurements; unknown ids are ignored.
  absl::Status Remove(const google::protobuf::RepeatedPtrField<std::string>& ids);

  // How many measurements wait to be acknowledged.
  absl::StatusOr<int64_t> Depth();

  // Moves the spooled measurements `ids` to the dead letters with `reason` and the time
  // `refused_at_unix_ms`, in one transaction; unknown ids are ignored. Then drops the
  // oldest dead letters beyond max_dead_letters. Returns how many were dropped.
  absl::StatusOr<int64_t> MoveToDeadLetters(const std::vector<std::string>& ids,
                                            const std::string& reason, int64_t refused_at_unix_ms);

  // Up to `limit` dead letters, oldest first.
  absl::StatusOr<std::vector<DeadLetter>> DeadLetters(int limit);
  absl::StatusOr<int64_t> DeadLetterCount();

  // Puts every dead letter back at the end of the queue (after the server was fixed, say);
  // returns how many. Ids still queued are not duplicated.
  absl::StatusOr<int64_t> RequeueDeadLetters();
  // Forgets every dead letter; returns how many.
  absl::StatusOr<int64_t> ClearDeadLetters();

 private:
  Spool(sqlite3* db, SpoolOptions options) : db_(db), options_(options) {}

  std::mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  const SpoolOptions options_;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_SPOOL_SPOOL_H_

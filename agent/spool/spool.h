// The agent's on-disk spool: every measurement is written here, durably, before it is
// sent, and removed only once the server acknowledged it. A killed agent restarts with
// its spool intact and sends what is left; the server ignores ids it stored already.
//
//   absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open("/var/lib/maplex-agent/spool.db");
//   (*spool)->Add(measurement);                 // on disk when this returns OK
//   auto batch = (*spool)->Pending(500);        // oldest first
//   ... send, receive the ack ...
//   (*spool)->Remove(ack.committed_ids());
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

class Spool {
 public:
  // Opens or creates the spool file. FailedPrecondition for a file that is not a spool.
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const std::string& path);
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

 private:
  explicit Spool(sqlite3* db) : db_(db) {}

  std::mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_SPOOL_SPOOL_H_

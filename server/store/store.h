// The server's durable state in one SQLite file: devices and their specs, descriptors,
// measurements, trained model versions and (hashed) bearer tokens.
//
//   absl::StatusOr<std::unique_ptr<Store>> store = Store::Open("/var/lib/maplex/maplex.db");
//   absl::StatusOr<Store::IngestResult> r = (*store)->AddMeasurements(batch);
//   // r is returned only after the transaction committed durably (WAL, synchronous=FULL).
//
// The database runs in WAL mode with foreign keys on. Its schema version lives in the
// table schema_version and is migrated forward on open; a file that is not a maplex
// database, or is newer than this binary, is refused and left untouched.
//
// Thread-safe. Writes go through one connection, serialized by a mutex; reads go through
// a small pool of separate read-only connections, each read in one read transaction, so a
// reader never waits for a writer's transaction or its fsync (WAL lets readers see the
// last commit while a writer works). Callers validate their input (server/validation.h);
// the store enforces only what the schema enforces.
#ifndef MAPLEX_SERVER_STORE_STORE_H_
#define MAPLEX_SERVER_STORE_STORE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/arch/architecture_space.h"
#include "maplex/v1/ingest.pb.h"
#include "maplex/v1/model.pb.h"
#include "maplex/v1/models.pb.h"
#include "maplex/v1/registry.pb.h"
#include "maplex/v1/tokens.pb.h"

struct sqlite3;

namespace maplex::server {

// A measurement ready to store: validated, its architecture resolved to a value of its
// space. The value (not its canonical string) travels from validation to the store: it is
// 40 bytes inline, so building a row allocates nothing for it, and its type says it was
// parsed; the store writes its space's name and canonical string, the key of the row.
struct StoredMeasurement {
  std::string id;
  std::string device_id;
  core::Architecture arch;
  maplex::v1::MeasurementStats stats;
  maplex::v1::MeasurementProtocol protocol;
  int64_t measured_at_unix_ms = 0;
};

// The registry name of `space` ("nb201", "fbnet") as an absl::string_view (Debian's Abseil
// has its own string_view type, not std::string_view).
inline absl::string_view SpaceName(const core::ArchitectureSpace& space) {
  const std::string_view name = space.name();
  return absl::string_view(name.data(), name.size());
}

// One architecture's latency on one device: the median of its measurements.
using ArchitectureLatency = std::pair<core::Architecture, double>;

// What the trainer reads: one device with the median latency of each architecture it has
// in one space, ordered by canonical string.
struct DeviceSamples {
  maplex::v1::Device device;
  std::optional<maplex::v1::ReportDescriptorRequest> descriptor;
  std::vector<ArchitectureLatency> latency_ms;
};

// A bearer token as stored: its public record and the SHA-256 of its secret (the secret
// itself is never stored).
struct StoredToken {
  maplex::v1::Token token;
  std::string secret_sha256;  // 32 raw bytes
};

struct DeviceFilter {
  std::string category;                     // empty = any
  std::map<std::string, std::string> labels;  // all must match
  bool include_retired = false;
};

class Store {
 public:
  // The schema version this binary writes. Version history: see kMigrations in store.cc.
  static constexpr int kSchemaVersion = 4;

  // Opens the database at `path`, creating it when missing, and migrates it to
  // kSchemaVersion. FailedPrecondition, with the file untouched, when it is not SQLite,
  // not a maplex database, or from a newer maplex.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

  // Copies the maplex database at `db_path` to the new file `out_path` with SQLite's
  // online backup API: safe while a server writes to it (the copy is one consistent
  // snapshot; writers are held up for one page batch at a time, never for the whole copy).
  // The copy is written beside `out_path`, checked (integrity_check) and then renamed into
  // place, so `out_path` never holds a partial copy. FailedPrecondition when `db_path` is
  // not a maplex database or `out_path` exists. Returns the copy's size in bytes.
  static absl::StatusOr<int64_t> Backup(const std::string& db_path, const std::string& out_path);

  // Checkpoints the WAL into the main file and closes.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- devices ---
  struct Registration {
    maplex::v1::Device device;
    bool created = false;
  };
  // Returns the existing device when (fingerprint, config) is registered already.
  // AlreadyExists when the wanted id belongs to another configuration.
  absl::StatusOr<Registration> RegisterDevice(const maplex::v1::RegisterDeviceRequest& request);
  // NotFound when no device has this id. Devices come with measurement_count and
  // measurement_count_by_space filled (distinct architectures, per space).
  absl::StatusOr<maplex::v1::Device> GetDevice(absl::string_view id);
  // Devices matching `filter` with id > after_id, by id, at most `limit`.
  absl::StatusOr<std::vector<maplex::v1::Device>> ListDevices(const DeviceFilter& filter,
                                                             absl::string_view after_id,
                                                             int limit);
  absl::StatusOr<maplex::v1::Device> UpdateLabels(absl::string_view id,
                                                  const std::map<std::string, std::string>& set,
                                                  const std::vector<std::string>& remove);
  absl::StatusOr<maplex::v1::Device> RetireDevice(absl::string_view id);

  // --- measurements ---
  struct IngestResult {
    int inserted = 0;
    int already_stored = 0;  // ids stored before: replays are no-ops
    int replaced = 0;        // rows deleted by a replacing batch
  };
  // Stores the batch in one transaction and returns after it committed durably. Rows are
  // keyed by (space, canonical string) of their architecture. A measurement whose id is
  // stored already with the same content (device, space, architecture, median, p90,
  // stddev, repeats) is skipped (counted in already_stored); with other content it is
  // refused: AlreadyExists naming the id and both contents. On any error nothing of the
  // batch is stored.
  //
  // With `replace`, the stored rows of every (device, space, architecture) the batch names
  // are deleted first, in the same transaction, so corrected values take the place of old
  // ones (`maplex import --replace`); ids then never conflict.
  absl::StatusOr<IngestResult> AddMeasurements(absl::Span<const StoredMeasurement> batch,
                                               bool replace = false);
  // A batch with the per-row work that needs no database done: each row's canonical
  // string (its key) and its protocol's bytes. Prepare it on any thread, before the write
  // lock, so that a committing thread only inserts (the ingest service prepares batch N+1
  // while batch N commits).
  class PreparedMeasurements {
   public:
    explicit PreparedMeasurements(std::vector<StoredMeasurement> rows);
    const std::vector<StoredMeasurement>& rows() const { return rows_; }

   private:
    friend class Store;
    // Row i's canonical string and serialized protocol: one buffer for the batch rather
    // than two allocations per row.
    absl::string_view Canonical(size_t i) const;
    absl::string_view Protocol(size_t i) const;

    std::vector<StoredMeasurement> rows_;
    std::string bytes_;         // each row's canonical string, then its protocol, in order
    std::vector<size_t> ends_;  // row i's canonical string ends at [2i], its protocol at [2i+1]
  };
  // AddMeasurements of a prepared batch: the same contract. (The overload above prepares
  // a copy of its rows.)
  absl::StatusOr<IngestResult> AddMeasurements(const PreparedMeasurements& batch,
                                               bool replace = false);
  // Whether the device exists and is not retired, without counting its measurements
  // (the ingest path asks this for every batch). NotFound when no device has this id.
  absl::StatusOr<bool> DeviceAcceptsData(absl::string_view id);
  // Number of stored measurement rows, every space.
  absl::StatusOr<int64_t> MeasurementCount();
  // The distinct architectures of `space` measured on `device_id`, by canonical string.
  absl::StatusOr<std::vector<core::Architecture>> MeasuredArchitectures(
      absl::string_view device_id, const core::ArchitectureSpace& space);
  // The latency of each architecture of `space` measured on `device_id` (the median of its
  // measurements, as LoadTrainingData combines them), by canonical string: those after
  // `after_canonical` (all when empty), at most `limit` (all when 0). NotFound for an
  // unknown id; DataLoss when a stored string no longer parses in its space.
  absl::StatusOr<std::vector<ArchitectureLatency>> DeviceLatencies(
      absl::string_view device_id, const core::ArchitectureSpace& space,
      absl::string_view after_canonical = "", int limit = 0);
  // Every non-retired device with at least one measurement in `space`, with its labels,
  // descriptor and latencies in that space (not its measurement counts: GetDevice has them).
  absl::StatusOr<std::vector<DeviceSamples>> LoadTrainingData(const core::ArchitectureSpace& space);

  // --- descriptors ---
  // Stores the device's descriptor (replacing the last one) and returns whether its
  // content changed: an identical report only refreshes reported_at and returns false,
  // so the caller need not retrain.
  absl::StatusOr<bool> PutDescriptor(const maplex::v1::ReportDescriptorRequest& descriptor,
                                     int64_t reported_at_unix_ms);

  // --- models ---
  // Stores a new model version (info.version is assigned: the last version + 1). With
  // `keep_newest` > 0 it also applies the retention of DeleteOldModels(keep_newest,
  // pinned) in the same transaction, so the stored versions never exceed the bound, not
  // even for a moment, and a training costs one commit.
  absl::StatusOr<uint64_t> AddModel(maplex::v1::ModelInfo info,
                                    const maplex::v1::ModelSnapshot& snapshot, int keep_newest = 0,
                                    absl::Span<const uint64_t> pinned = {});
  // Stored versions, newest first, only those below `before_version` when it is not 0,
  // at most `limit` when it is not 0. `serving` is not set here (the server knows which
  // one it serves).
  absl::StatusOr<std::vector<maplex::v1::ModelInfo>> ListModels(uint64_t before_version = 0,
                                                                int limit = 0);
  // NotFound, naming the version, when it is not stored (never trained, or deleted by
  // DeleteOldModels).
  absl::StatusOr<maplex::v1::ModelInfo> GetModelInfo(uint64_t version);
  struct StoredModel {
    maplex::v1::ModelInfo info;
    maplex::v1::ModelSnapshot snapshot;
  };
  // The newest model version, or nullopt when none was trained yet.
  absl::StatusOr<std::optional<StoredModel>> LatestModel();
  // Whether `version` is stored (kept by retention).
  absl::StatusOr<bool> HasModel(uint64_t version);
  // One stored version with its snapshot; NotFound naming it when it is not stored.
  absl::StatusOr<StoredModel> GetModel(uint64_t version);
  // Retention: deletes every version that is neither among the newest `keep_newest` nor
  // in `pinned`, in one transaction, and returns how many it deleted. Their pages go to
  // SQLite's free list and are reused by later writes, so the file stops growing.
  absl::StatusOr<int> DeleteOldModels(int keep_newest, absl::Span<const uint64_t> pinned);

  // --- diagnostics ---
  // The value of `PRAGMA name` on the write connection and on every read connection, as
  // text (e.g. Pragmas("synchronous") = {"2", "2", "2"}). For tests and diagnostics.
  absl::StatusOr<std::vector<std::string>> Pragmas(absl::string_view name);

  // Test seam: when set, every write transaction calls it just before it commits, with
  // the write lock and the transaction held (a test blocks in it to prove that readers
  // do not wait for writers). Set it before concurrent use; nullptr clears it.
  void SetBeforeCommitHookForTest(std::function<void()> hook);

  // --- tokens ---
  // Stores a new token (its id and created_at are assigned). AlreadyExists when the hash
  // is stored already.
  absl::StatusOr<StoredToken> AddToken(const maplex::v1::Token& token,
                                       const std::string& secret_sha256);
  // Every token, revoked ones included, by id.
  absl::StatusOr<std::vector<StoredToken>> ListTokens();
  // Marks the token revoked (a no-op when it is already) and returns it. NotFound when no
  // token has this id.
  absl::StatusOr<StoredToken> RevokeToken(int64_t id);

  // The schema version found on disk when the store was opened (before migration).
  int opened_schema_version() const { return opened_schema_version_; }

 private:
  // A read connection leased from the pool for one read transaction; returned (and its
  // transaction ended) when it goes out of scope.
  class ReadLease {
   public:
    ReadLease(Store* store, sqlite3* db);
    ~ReadLease();
    ReadLease(const ReadLease&) = delete;
    ReadLease& operator=(const ReadLease&) = delete;
    sqlite3* db() const { return db_; }
    // Status of BEGIN: a read that failed to start.
    const absl::Status& status() const { return status_; }

   private:
    Store* store_;
    sqlite3* db_;
    absl::Status status_;
  };

  Store(sqlite3* db, std::vector<sqlite3*> readers, int opened_schema_version);

  // Waits for an idle read connection (the pool is small; reads are short).
  ReadLease Read();
  // DeleteOldModels inside the caller's write transaction.
  absl::StatusOr<int> DeleteOldModelsLocked(int keep_newest, absl::Span<const uint64_t> pinned)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the test hook, if any, inside a write transaction.
  void BeforeCommit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  std::function<void()> before_commit_hook_;

  std::mutex read_mu_;
  std::condition_variable reader_idle_;
  const std::vector<sqlite3*> readers_;  // all, closed by ~Store
  std::vector<sqlite3*> idle_readers_ ABSL_GUARDED_BY(read_mu_);
  const int opened_schema_version_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_STORE_STORE_H_

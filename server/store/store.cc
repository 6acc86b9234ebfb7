#include "server/store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "google/protobuf/util/message_differencer.h"
#include "platform/sqlite.h"
#include "platform/sqlite_backup.h"

namespace maplex::server {
namespace {

using maplex::v1::Device;

// 'MPLX': marks the file as a maplex database, so a foreign SQLite file is recognised.
constexpr int kApplicationId = kMaplexApplicationId;

// kMigrations[i] takes the schema from version i to i + 1. Append only; never edit a
// migration that has shipped.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE devices (
  id                   TEXT PRIMARY KEY,
  hardware_fingerprint TEXT NOT NULL,
  hardware_name        TEXT NOT NULL,
  runtime              TEXT NOT NULL,
  precision            TEXT NOT NULL,
  batch_size           INTEGER NOT NULL CHECK (batch_size >= 1),
  threads              INTEGER NOT NULL CHECK (threads >= 0),
  category             TEXT NOT NULL,
  spec                 BLOB NOT NULL,            -- maplex.v1.HardwareSpec
  registered_at_ms     INTEGER NOT NULL,
  retired_at_ms        INTEGER,
  UNIQUE (hardware_fingerprint, runtime, precision, batch_size, threads)
);
CREATE TABLE device_labels (
  device_id TEXT NOT NULL REFERENCES devices(id),
  key       TEXT NOT NULL,
  value     TEXT NOT NULL,
  PRIMARY KEY (device_id, key)
);
CREATE TABLE descriptors (
  device_id        TEXT PRIMARY KEY REFERENCES devices(id),
  reported_at_ms   INTEGER NOT NULL,
  descriptor       BLOB NOT NULL                 -- maplex.v1.ReportDescriptorRequest
);
CREATE TABLE measurements (
  measurement_id   TEXT PRIMARY KEY,             -- agent-made: replays are no-ops
  device_id        TEXT NOT NULL REFERENCES devices(id),
  arch_index       INTEGER NOT NULL,
  median_ms        REAL NOT NULL CHECK (median_ms > 0),
  p90_ms           REAL NOT NULL,
  stddev_ms        REAL NOT NULL,
  repeats          INTEGER NOT NULL,
  protocol         BLOB NOT NULL,                -- maplex.v1.MeasurementProtocol
  measured_at_ms   INTEGER NOT NULL,
  received_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX measurements_by_device ON measurements (device_id, arch_index);
CREATE TABLE models (
  version          INTEGER PRIMARY KEY,
  method           TEXT NOT NULL,
  created_at_ms    INTEGER NOT NULL,
  info             BLOB NOT NULL,                -- maplex.v1.ModelInfo
  snapshot         BLOB NOT NULL                 -- maplex.v1.ModelSnapshot
);
)sql",
    // 1 -> 2: bearer tokens, stored as the SHA-256 of their secret. An agent token names
    // its device; the device need not exist yet (the agent registers it with the token).
    R"sql(
CREATE TABLE tokens (
  id               INTEGER PRIMARY KEY,
  name             TEXT NOT NULL,
  role             INTEGER NOT NULL,             -- maplex.v1.Role
  device_id        TEXT NOT NULL,                -- '' unless role is agent
  secret_sha256    BLOB NOT NULL UNIQUE,
  created_at_ms    INTEGER NOT NULL,
  revoked_at_ms    INTEGER
);
)sql",
    // 2 -> 3: the trainer reads each device's (arch_index, median_ms) in order; a covering
    // index answers that from the index alone, without a lookup per row or a re-sort
    // (docs/BENCHMARKS.md). It starts with the old index's columns, so it replaces it.
    R"sql(
CREATE INDEX measurements_by_device_arch_latency ON measurements (device_id, arch_index, median_ms);
DROP INDEX measurements_by_device;
)sql",
    // 3 -> 4: measurements of any architecture space, keyed by (space, canonical string)
    // (DESIGN.md: a space may be far too large to index by integer). Every row keeps its
    // id, device and values; an NB201 index becomes its cell string through
    // maplex_nb201_cell(), which Open registers on the connection before migrating (the
    // official index order is compiled into core/arch, not into SQL). SQLite cannot alter
    // a column's meaning in place, so the table is rebuilt (the documented 12-step way).
    R"sql(
CREATE TABLE measurements_v4 (
  measurement_id   TEXT PRIMARY KEY,             -- agent-made: replays are no-ops
  device_id        TEXT NOT NULL REFERENCES devices(id),
  space            TEXT NOT NULL,                -- core/arch registry name: nb201, fbnet
  arch             TEXT NOT NULL,                -- canonical string in that space
  median_ms        REAL NOT NULL CHECK (median_ms > 0),
  p90_ms           REAL NOT NULL,
  stddev_ms        REAL NOT NULL,
  repeats          INTEGER NOT NULL,
  protocol         BLOB NOT NULL,                -- maplex.v1.MeasurementProtocol
  measured_at_ms   INTEGER NOT NULL,
  received_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO measurements_v4 (measurement_id, device_id, space, arch, median_ms, p90_ms,
                             stddev_ms, repeats, protocol, measured_at_ms, received_at_ms)
  SELECT measurement_id, device_id, 'nb201', maplex_nb201_cell(arch_index), median_ms, p90_ms,
         stddev_ms, repeats, protocol, measured_at_ms, received_at_ms FROM measurements;
DROP TABLE measurements;
ALTER TABLE measurements_v4 RENAME TO measurements;
CREATE INDEX measurements_by_device_space_arch_latency
  ON measurements (device_id, space, arch, median_ms);
)sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

absl::StatusOr<int64_t> QueryInt(sqlite3* db, absl::string_view sql) {
  Statement s(db, sql);
  int64_t value = 0;
  if (s.Step()) value = s.ColumnInt(0);
  if (!s.status().ok()) return s.status();
  return value;
}

// Reads the schema version of an opened database, or an error if it is not ours.
absl::StatusOr<int> ReadSchemaVersion(sqlite3* db, const std::string& path) {
  // Any read of a file that is not SQLite fails here with SQLITE_NOTADB.
  absl::StatusOr<int64_t> tables = QueryInt(db, "SELECT count(*) FROM sqlite_master");
  if (!tables.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is not a readable SQLite database (", tables.status().message(),
        "); refusing to open it, the file is left as it is"));
  }
  if (*tables == 0) return 0;  // new, empty file
  absl::StatusOr<int64_t> app_id = QueryInt(db, "PRAGMA application_id");
  if (!app_id.ok()) return app_id.status();
  if (*app_id != kApplicationId) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is a SQLite database of another application (application_id %#x, maplex is %#x); "
        "refusing to open it, the file is left as it is",
        path, *app_id, kApplicationId));
  }
  absl::StatusOr<int64_t> version = QueryInt(db, "SELECT version FROM schema_version");
  if (!version.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has no readable schema_version: ", version.status().message()));
  }
  if (*version > Store::kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has schema version ", *version, " but this maplex knows up to ",
        Store::kSchemaVersion, "; upgrade maplex, the file is left as it is"));
  }
  return static_cast<int>(*version);
}

// maplex_nb201_cell(index): the NB201 cell string of an official index, for migration
// 3 -> 4. An index out of range fails the migration (and so the open), leaving the file
// as it was.
void Nb201CellFunction(sqlite3_context* context, int, sqlite3_value** argv) {
  const int64_t index = sqlite3_value_int64(argv[0]);
  if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER || index < 0 ||
      index >= core::kNb201CellCount) {
    sqlite3_result_error(context,
                         absl::StrCat("arch_index ", index, " is not an NB201 index").c_str(), -1);
    return;
  }
  const std::string cell =
      core::Nb201Space::FormatCell(core::Nb201Space::Get().CellAt(static_cast<int32_t>(index)));
  sqlite3_result_text(context, cell.data(), static_cast<int>(cell.size()), SQLITE_TRANSIENT);
}

absl::Status Migrate(sqlite3* db, int from) {
  if (from == Store::kSchemaVersion) return absl::OkStatus();
  if (int rc =
          sqlite3_create_function(db, "maplex_nb201_cell", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                  nullptr, &Nb201CellFunction, nullptr, nullptr);
      rc != SQLITE_OK) {
    return SqliteError(db, rc, "register maplex_nb201_cell");
  }
  Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  if (from == 0) {
    absl::Status s = Exec(db, absl::StrCat("PRAGMA application_id = ", kApplicationId,
                                           "; CREATE TABLE schema_version (version INTEGER "
                                           "NOT NULL); INSERT INTO schema_version VALUES (0);"));
    if (!s.ok()) return s;
  }
  for (int v = from; v < Store::kSchemaVersion; ++v) {
    absl::Status s = Exec(db, kMigrations[v]);
    if (!s.ok()) return absl::InternalError(absl::StrCat("migration ", v, " -> ", v + 1, ": ", s.message()));
  }
  absl::Status s =
      Exec(db, absl::StrCat("UPDATE schema_version SET version = ", Store::kSchemaVersion));
  if (!s.ok()) return s;
  return tx.Commit();
}

std::string SerializeOrDie(const google::protobuf::MessageLite& m) { return m.SerializeAsString(); }

constexpr char kDeviceColumns[] =
    "d.id, d.hardware_fingerprint, d.hardware_name, d.runtime, d.precision, d.batch_size, "
    "d.threads, d.spec, d.registered_at_ms, d.retired_at_ms";

// Fills a Device from a row selected with kDeviceColumns (labels are read separately).
Device DeviceFromRow(const Statement& s) {
  Device d;
  d.set_id(s.ColumnText(0));
  d.set_hardware_fingerprint(s.ColumnText(1));
  d.set_hardware_name(s.ColumnText(2));
  d.mutable_config()->set_runtime(s.ColumnText(3));
  d.mutable_config()->set_precision(s.ColumnText(4));
  d.mutable_config()->set_batch_size(static_cast<int32_t>(s.ColumnInt(5)));
  d.mutable_config()->set_threads(static_cast<int32_t>(s.ColumnInt(6)));
  d.mutable_spec()->ParseFromString(s.ColumnBlob(7));
  d.set_registered_at_unix_ms(s.ColumnInt(8));
  d.set_retired(!s.ColumnIsNull(9));
  return d;
}

// Fills measurement_count and measurement_count_by_space: distinct architectures per space
// (the covering index answers it).
absl::Status ReadCounts(sqlite3* db, Device& device) {
  Statement s(db,
              "SELECT space, count(DISTINCT arch) FROM measurements WHERE device_id = ?1 "
              "GROUP BY space");
  s.Bind(1, device.id());
  int64_t total = 0;
  while (s.Step()) {
    (*device.mutable_measurement_count_by_space())[s.ColumnText(0)] = s.ColumnInt(1);
    total += s.ColumnInt(1);
  }
  device.set_measurement_count(total);
  return s.status();
}

absl::Status ReadLabels(sqlite3* db, Device& device) {
  Statement s(db, "SELECT key, value FROM device_labels WHERE device_id = ?1");
  s.Bind(1, device.id());
  while (s.Step()) (*device.mutable_labels())[s.ColumnText(0)] = s.ColumnText(1);
  return s.status();
}

absl::Status WriteLabels(sqlite3* db, absl::string_view id,
                         const google::protobuf::Map<std::string, std::string>& labels) {
  Statement s(db, "INSERT OR REPLACE INTO device_labels (device_id, key, value) VALUES (?1, ?2, ?3)");
  for (const auto& [key, value] : labels) {
    s.Bind(1, id);
    s.Bind(2, key);
    s.Bind(3, value);
    if (absl::Status st = s.Run(); !st.ok()) return st;
    s.Reset();
  }
  return s.status();
}

// Closes a connection on scope exit unless released (std::exchange(c.db, nullptr)).
struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close(db); }
};

absl::Status OpenConnection(const std::string& path, int flags, Connection* c) {
  int rc = sqlite3_open_v2(path.c_str(), &c->db, flags, nullptr);
  if (rc != SQLITE_OK) return SqliteError(c->db, rc, absl::StrCat("open ", path));
  sqlite3_busy_timeout(c->db, 5000);
  return absl::OkStatus();
}

// Read connections in the pool: the trainer's load, an ingest batch's device check and a
// Predict's error path can all read at once on 2 cores without waiting for each other.
constexpr int kReadConnections = 3;

absl::StatusOr<Device> GetDeviceOn(sqlite3* db, absl::string_view id) {
  Statement s(db, absl::StrCat("SELECT ", kDeviceColumns, " FROM devices d WHERE d.id = ?1"));
  s.Bind(1, id);
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return absl::NotFoundError(absl::StrCat("device_id: no device \"", id, "\""));
  }
  Device d = DeviceFromRow(s);
  if (absl::Status st = ReadLabels(db, d); !st.ok()) return st;
  if (absl::Status st = ReadCounts(db, d); !st.ok()) return st;
  return d;
}

std::string DerivedDeviceId(const maplex::v1::RegisterDeviceRequest& r) {
  const auto& c = r.config();
  return absl::StrCat(r.hardware_fingerprint().substr(0, 12), "-", c.runtime(), "-",
                      c.precision(), "-b", c.batch_size(), "-t", c.threads());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  // NOMUTEX: the store serializes each connection itself (the write mutex, one lease per
  // reader), so SQLite's own per-call mutex would only cost a lock and an unlock on every
  // bind, step and column read of the ingest loop (docs/BENCHMARKS.md).
  Connection c;
  if (absl::Status s = OpenConnection(
          path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, &c);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<int> version = ReadSchemaVersion(c.db, path);
  if (!version.ok()) return version.status();
  // Durability: an acknowledged commit survives a crash of the process or the machine.
  if (absl::Status s = Exec(c.db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                                  "PRAGMA foreign_keys = ON;");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Migrate(c.db, *version); !s.ok()) return s;
  // Readers get their own connections: in WAL mode they read the last commit while the
  // writer's transaction (and its fsync) runs. query_only makes a stray write an error.
  std::vector<Connection> readers(kReadConnections);
  for (Connection& reader : readers) {
    if (absl::Status s = OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, &reader);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Exec(reader.db,
                              "PRAGMA query_only = ON; PRAGMA synchronous = FULL; "
                              "PRAGMA foreign_keys = ON;");
        !s.ok()) {
      return s;
    }
  }
  std::vector<sqlite3*> reader_dbs;
  for (Connection& reader : readers) reader_dbs.push_back(std::exchange(reader.db, nullptr));
  return std::unique_ptr<Store>(
      new Store(std::exchange(c.db, nullptr), std::move(reader_dbs), *version));
}

absl::StatusOr<int64_t> Store::Backup(const std::string& db_path, const std::string& out_path) {
  return BackupDatabase(db_path, out_path, kApplicationId);
}

Store::Store(sqlite3* db, std::vector<sqlite3*> readers, int opened_schema_version)
    : db_(db),
      readers_(readers),
      idle_readers_(std::move(readers)),
      opened_schema_version_(opened_schema_version) {}

Store::~Store() {
  {
    // Every lease has ended: the store outlives its callers.
    std::lock_guard<std::mutex> lock(read_mu_);
    for (sqlite3* reader : readers_) sqlite3_close(reader);
  }
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  sqlite3_close(db_);
}

Store::ReadLease::ReadLease(Store* store, sqlite3* db) : store_(store), db_(db) {
  // One read transaction: every statement of the lease sees the same commit.
  status_ = Exec(db_, "BEGIN");
}

Store::ReadLease::~ReadLease() {
  if (status_.ok()) Exec(db_, "COMMIT").IgnoreError();
  // Notified under the lock: once the lock is released the store may be destroyed (its
  // destructor takes the lock after the last lease), condition variable included.
  std::lock_guard<std::mutex> lock(store_->read_mu_);
  store_->idle_readers_.push_back(db_);
  store_->reader_idle_.notify_one();
}

Store::ReadLease Store::Read() {
  std::unique_lock<std::mutex> lock(read_mu_);
  reader_idle_.wait(lock, [this] { return !idle_readers_.empty(); });
  sqlite3* db = idle_readers_.back();
  idle_readers_.pop_back();
  lock.unlock();
  return ReadLease(this, db);
}

void Store::BeforeCommit() {
  if (before_commit_hook_) before_commit_hook_();
}

void Store::SetBeforeCommitHookForTest(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  before_commit_hook_ = std::move(hook);
}

absl::StatusOr<std::vector<std::string>> Store::Pragmas(absl::string_view name) {
  const std::string sql = absl::StrCat("PRAGMA ", name);
  std::vector<std::string> values;
  auto read = [&](sqlite3* db) -> absl::Status {
    Statement s(db, sql);
    if (s.Step()) values.push_back(s.ColumnText(0));
    return s.status();
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (absl::Status s = read(db_); !s.ok()) return s;
  }
  // Each reader in turn: hold them all so none is read twice.
  std::vector<std::unique_ptr<ReadLease>> leases;
  for (size_t i = 0; i < readers_.size(); ++i) {
    std::unique_lock<std::mutex> lock(read_mu_);
    reader_idle_.wait(lock, [this] { return !idle_readers_.empty(); });
    sqlite3* db = idle_readers_.back();
    idle_readers_.pop_back();
    lock.unlock();
    leases.push_back(std::make_unique<ReadLease>(this, db));
    if (absl::Status s = read(db); !s.ok()) return s;
  }
  return values;
}

absl::StatusOr<Device> Store::GetDevice(absl::string_view id) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  return GetDeviceOn(r.db(), id);
}

absl::StatusOr<bool> Store::DeviceAcceptsData(absl::string_view id) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  Statement s(r.db(), "SELECT retired_at_ms IS NULL FROM devices WHERE id = ?1");
  s.Bind(1, id);
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return absl::NotFoundError(absl::StrCat("device_id: no device \"", id, "\""));
  }
  return s.ColumnInt(0) != 0;
}

absl::StatusOr<Store::Registration> Store::RegisterDevice(
    const maplex::v1::RegisterDeviceRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto& c = request.config();
  {
    Statement s(db_,
                "SELECT id FROM devices WHERE hardware_fingerprint = ?1 AND runtime = ?2 AND "
                "precision = ?3 AND batch_size = ?4 AND threads = ?5");
    s.Bind(1, request.hardware_fingerprint());
    s.Bind(2, c.runtime());
    s.Bind(3, c.precision());
    s.Bind(4, int64_t{c.batch_size()});
    s.Bind(5, int64_t{c.threads()});
    if (s.Step()) {
      absl::StatusOr<Device> existing = GetDeviceOn(db_, s.ColumnText(0));
      if (!existing.ok()) return existing.status();
      return Registration{*std::move(existing), false};
    }
    if (!s.status().ok()) return s.status();
  }
  std::string id = request.id().empty() ? DerivedDeviceId(request) : request.id();
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  Statement insert(db_,
                   "INSERT INTO devices (id, hardware_fingerprint, hardware_name, runtime, "
                   "precision, batch_size, threads, category, spec, registered_at_ms) VALUES "
                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  insert.Bind(1, id);
  insert.Bind(2, request.hardware_fingerprint());
  insert.Bind(3, request.hardware_name());
  insert.Bind(4, c.runtime());
  insert.Bind(5, c.precision());
  insert.Bind(6, int64_t{c.batch_size()});
  insert.Bind(7, int64_t{c.threads()});
  insert.Bind(8, request.spec().category());
  insert.BindBlob(9, SerializeOrDie(request.spec()));
  insert.Bind(10, NowMs());
  if (absl::Status s = insert.Run(); !s.ok()) {
    if (absl::IsAlreadyExists(s)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "id: device \"", id, "\" exists already with another hardware or configuration"));
    }
    return s;
  }
  if (absl::Status s = WriteLabels(db_, id, request.labels()); !s.ok()) return s;
  BeforeCommit();
  if (absl::Status s = tx.Commit(); !s.ok()) return s;
  absl::StatusOr<Device> created = GetDeviceOn(db_, id);
  if (!created.ok()) return created.status();
  return Registration{*std::move(created), true};
}

absl::StatusOr<std::vector<Device>> Store::ListDevices(const DeviceFilter& filter,
                                                      absl::string_view after_id, int limit) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  std::string sql = absl::StrCat("SELECT ", kDeviceColumns, " FROM devices d WHERE d.id > ?1");
  if (!filter.include_retired) absl::StrAppend(&sql, " AND d.retired_at_ms IS NULL");
  if (!filter.category.empty()) absl::StrAppend(&sql, " AND d.category = ?2");
  int param = 3;
  for (size_t i = 0; i < filter.labels.size(); ++i, param += 2) {
    absl::StrAppend(&sql, " AND EXISTS (SELECT 1 FROM device_labels l WHERE l.device_id = d.id "
                          "AND l.key = ?", param, " AND l.value = ?", param + 1, ")");
  }
  absl::StrAppend(&sql, " ORDER BY d.id LIMIT ", limit);
  Statement s(db, sql);
  s.Bind(1, after_id);
  if (!filter.category.empty()) s.Bind(2, filter.category);
  param = 3;
  for (const auto& [key, value] : filter.labels) {
    s.Bind(param++, key);
    s.Bind(param++, value);
  }
  std::vector<Device> devices;
  while (s.Step()) devices.push_back(DeviceFromRow(s));
  if (!s.status().ok()) return s.status();
  for (Device& d : devices) {
    if (absl::Status st = ReadLabels(db, d); !st.ok()) return st;
    if (absl::Status st = ReadCounts(db, d); !st.ok()) return st;
  }
  return devices;
}

absl::StatusOr<Device> Store::UpdateLabels(absl::string_view id,
                                           const std::map<std::string, std::string>& set,
                                           const std::vector<std::string>& remove) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::StatusOr<Device> d = GetDeviceOn(db_, id); !d.ok()) return d.status();
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  Statement del(db_, "DELETE FROM device_labels WHERE device_id = ?1 AND key = ?2");
  for (const std::string& key : remove) {
    del.Bind(1, id);
    del.Bind(2, key);
    if (absl::Status s = del.Run(); !s.ok()) return s;
    del.Reset();
  }
  google::protobuf::Map<std::string, std::string> labels(set.begin(), set.end());
  if (absl::Status s = WriteLabels(db_, id, labels); !s.ok()) return s;
  BeforeCommit();
  if (absl::Status s = tx.Commit(); !s.ok()) return s;
  return GetDeviceOn(db_, id);
}

absl::StatusOr<Device> Store::RetireDevice(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::StatusOr<Device> d = GetDeviceOn(db_, id); !d.ok()) return d.status();
  Statement s(db_, "UPDATE devices SET retired_at_ms = ?2 WHERE id = ?1 AND retired_at_ms IS NULL");
  s.Bind(1, id);
  s.Bind(2, NowMs());
  if (absl::Status st = s.Run(); !st.ok()) return st;
  return GetDeviceOn(db_, id);
}

Store::PreparedMeasurements::PreparedMeasurements(std::vector<StoredMeasurement> rows)
    : rows_(std::move(rows)) {
  ends_.reserve(2 * rows_.size());
  for (const StoredMeasurement& m : rows_) {
    bytes_ += m.arch.ToString();
    ends_.push_back(bytes_.size());
    m.protocol.AppendToString(&bytes_);
    ends_.push_back(bytes_.size());
  }
}

absl::string_view Store::PreparedMeasurements::Canonical(size_t i) const {
  const size_t begin = i == 0 ? 0 : ends_[2 * i - 1];
  return absl::string_view(bytes_).substr(begin, ends_[2 * i] - begin);
}

absl::string_view Store::PreparedMeasurements::Protocol(size_t i) const {
  return absl::string_view(bytes_).substr(ends_[2 * i], ends_[2 * i + 1] - ends_[2 * i]);
}

absl::StatusOr<Store::IngestResult> Store::AddMeasurements(
    absl::Span<const StoredMeasurement> batch, bool replace) {
  return AddMeasurements(
      PreparedMeasurements(std::vector<StoredMeasurement>(batch.begin(), batch.end())), replace);
}

absl::StatusOr<Store::IngestResult> Store::AddMeasurements(const PreparedMeasurements& prepared,
                                                           bool replace) {
  const std::vector<StoredMeasurement>& batch = prepared.rows_;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  IngestResult result;
  if (replace) {
    Statement del(db_,
                  "DELETE FROM measurements WHERE device_id = ?1 AND space = ?2 AND arch = ?3");
    for (size_t i = 0; i < batch.size(); ++i) {
      const StoredMeasurement& m = batch[i];
      del.Bind(1, m.device_id);
      del.Bind(2, SpaceName(*m.arch.space()));
      del.Bind(3, prepared.Canonical(i));
      if (absl::Status s = del.Run(); !s.ok()) return s;
      result.replaced += sqlite3_changes(db_);
      del.Reset();
    }
  }
  Statement insert(db_,
                   "INSERT INTO measurements (measurement_id, device_id, space, arch, median_ms, "
                   "p90_ms, stddev_ms, repeats, protocol, measured_at_ms, received_at_ms) VALUES "
                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                   "ON CONFLICT (measurement_id) DO NOTHING");
  // Read only for ids that are stored already: a new row costs nothing extra.
  Statement stored(db_,
                   "SELECT device_id, space, arch, median_ms, p90_ms, stddev_ms, repeats FROM "
                   "measurements WHERE measurement_id = ?1");
  const int64_t now = NowMs();
  for (size_t i = 0; i < batch.size(); ++i) {
    const StoredMeasurement& m = batch[i];
    const absl::string_view space = SpaceName(*m.arch.space());
    const absl::string_view canonical = prepared.Canonical(i);
    // Bound in place, not copied: `prepared` and the space's name outlive each step and
    // Reset.
    insert.BindUnowned(1, m.id);
    insert.BindUnowned(2, m.device_id);
    insert.BindUnowned(3, space);
    insert.BindUnowned(4, canonical);
    insert.Bind(5, m.stats.median_ms());
    insert.Bind(6, m.stats.p90_ms());
    insert.Bind(7, m.stats.stddev_ms());
    insert.Bind(8, int64_t{m.stats.repeats()});
    insert.BindBlobUnowned(9, prepared.Protocol(i));
    insert.Bind(10, m.measured_at_unix_ms);
    insert.Bind(11, now);
    if (absl::Status s = insert.Run(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("measurement ", m.id, ": ", s.message()));
    }
    const bool inserted = sqlite3_changes(db_) == 1;
    insert.Reset();
    if (inserted) {
      ++result.inserted;
      continue;
    }
    // A replay: acknowledged as stored only when it says what the stored row says.
    stored.Bind(1, m.id);
    if (!stored.Step()) {
      if (!stored.status().ok()) return stored.status();
      return absl::InternalError(
          absl::StrCat("measurement ", m.id, " conflicted but is not stored"));
    }
    const bool same =
        stored.ColumnText(0) == m.device_id && stored.ColumnText(1) == space &&
        stored.ColumnText(2) == canonical && stored.ColumnDouble(3) == m.stats.median_ms() &&
        stored.ColumnDouble(4) == m.stats.p90_ms() &&
        stored.ColumnDouble(5) == m.stats.stddev_ms() && stored.ColumnInt(6) == m.stats.repeats();
    if (!same) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "measurements: id \"%s\" is stored already with other content (device \"%s\", "
          "%s arch %s, median %g ms, p90 %g ms, stddev %g ms, repeats %d; this one: device "
          "\"%s\", %s arch %s, median %g ms, p90 %g ms, stddev %g ms, repeats %d); a replay "
          "must be identical, nothing of this batch was stored",
          m.id, stored.ColumnText(0), stored.ColumnText(1), stored.ColumnText(2),
          stored.ColumnDouble(3), stored.ColumnDouble(4), stored.ColumnDouble(5),
          stored.ColumnInt(6), m.device_id, space, canonical, m.stats.median_ms(), m.stats.p90_ms(),
          m.stats.stddev_ms(), m.stats.repeats()));
    }
    stored.Reset();
    ++result.already_stored;
  }
  BeforeCommit();
  if (absl::Status s = tx.Commit(); !s.ok()) return s;
  return result;
}

absl::StatusOr<int64_t> Store::MeasurementCount() {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  return QueryInt(db, "SELECT count(*) FROM measurements");
}

absl::StatusOr<std::vector<core::Architecture>> Store::MeasuredArchitectures(
    absl::string_view device_id, const core::ArchitectureSpace& space) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  Statement s(db,
              "SELECT DISTINCT arch FROM measurements WHERE device_id = ?1 AND space = ?2 "
              "ORDER BY 1");
  s.Bind(1, device_id);
  s.Bind(2, SpaceName(space));
  std::vector<core::Architecture> archs;
  while (s.Step()) {
    absl::StatusOr<core::Architecture> a = space.Parse(s.ColumnText(0));
    if (!a.ok()) {
      return absl::DataLossError(absl::StrCat("stored ", SpaceName(space), " architecture \"",
                                              s.ColumnText(0), "\": ", a.status().message()));
    }
    archs.push_back(*a);
  }
  if (!s.status().ok()) return s.status();
  return archs;
}

namespace {

// Architectures parsed once per canonical string: the devices of one training load share
// most of theirs, and parsing a string costs more than reading its row.
class ParsedArchitectures {
 public:
  explicit ParsedArchitectures(const core::ArchitectureSpace& space) : space_(space) {}

  absl::StatusOr<core::Architecture> Get(absl::string_view canonical) {
    if (auto it = parsed_.find(canonical); it != parsed_.end()) return it->second;
    absl::StatusOr<core::Architecture> a =
        space_.Parse(std::string_view(canonical.data(), canonical.size()));
    if (!a.ok()) {
      return absl::DataLossError(absl::StrCat("stored ", SpaceName(space_), " architecture \"",
                                              canonical, "\": ", a.status().message()));
    }
    parsed_.emplace(std::string(canonical), *a);
    return *a;
  }

 private:
  const core::ArchitectureSpace& space_;
  absl::flat_hash_map<std::string, core::Architecture> parsed_;
};

// Steps `rows` (arch, median_ms ordered by both) and combines the repeated measurements
// of one architecture by their median. DataLoss when a stored string does not parse.
absl::StatusOr<std::vector<ArchitectureLatency>> MedianPerArchitecture(
    Statement& rows, ParsedArchitectures& parsed) {
  std::vector<ArchitectureLatency> out;
  std::vector<double> same_arch;
  std::string current;
  absl::Status error;
  auto flush = [&] {
    if (same_arch.empty()) return;
    size_t n = same_arch.size();
    double median = n % 2 ? same_arch[n / 2] : 0.5 * (same_arch[n / 2 - 1] + same_arch[n / 2]);
    absl::StatusOr<core::Architecture> a = parsed.Get(current);
    if (a.ok()) {
      out.emplace_back(*a, median);
    } else if (error.ok()) {
      error = a.status();
    }
    same_arch.clear();
  };
  while (rows.Step()) {
    const absl::string_view arch = rows.ColumnTextView(0);
    if (arch != current) {
      flush();
      current.assign(arch.data(), arch.size());
    }
    same_arch.push_back(rows.ColumnDouble(1));
  }
  flush();
  if (!error.ok()) return error;
  return out;
}

constexpr char kLatencyRows[] =
    "SELECT arch, median_ms FROM measurements WHERE device_id = ?1 AND space = ?2 AND arch > ?3 "
    "ORDER BY arch, median_ms";

}  // namespace

absl::StatusOr<std::vector<ArchitectureLatency>> Store::DeviceLatencies(
    absl::string_view device_id, const core::ArchitectureSpace& space,
    absl::string_view after_canonical, int limit) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  if (absl::StatusOr<Device> d = GetDeviceOn(db, device_id); !d.ok()) return d.status();
  // A page is whole architectures: LIMIT counts distinct strings, so it goes on the
  // architectures, and the rows of those are read in order.
  std::string sql = kLatencyRows;
  if (limit > 0) {
    sql = absl::StrCat(
        "SELECT arch, median_ms FROM measurements WHERE device_id = ?1 AND space = ?2 AND arch IN "
        "(SELECT DISTINCT arch FROM measurements WHERE device_id = ?1 AND space = ?2 AND "
        "arch > ?3 ORDER BY arch LIMIT ",
        limit, ") ORDER BY arch, median_ms");
  }
  Statement rows(db, sql);
  rows.Bind(1, device_id);
  rows.Bind(2, SpaceName(space));
  rows.Bind(3, after_canonical);
  ParsedArchitectures parsed(space);
  absl::StatusOr<std::vector<ArchitectureLatency>> latencies = MedianPerArchitecture(rows, parsed);
  if (!rows.status().ok()) return rows.status();
  return latencies;
}

absl::StatusOr<std::vector<DeviceSamples>> Store::LoadTrainingData(
    const core::ArchitectureSpace& space) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  std::vector<DeviceSamples> out;
  {
    Statement s(db, absl::StrCat("SELECT ", kDeviceColumns,
                                 " FROM devices d WHERE d.retired_at_ms IS NULL AND EXISTS "
                                 "(SELECT 1 FROM measurements m WHERE m.device_id = d.id AND "
                                 "m.space = ?1) ORDER BY d.id"));
    s.Bind(1, SpaceName(space));
    while (s.Step()) out.push_back({DeviceFromRow(s), std::nullopt, {}});
    if (!s.status().ok()) return s.status();
  }
  Statement descriptor(db, "SELECT descriptor FROM descriptors WHERE device_id = ?1");
  // Repeated measurements of one architecture are combined by their median.
  Statement rows(db, kLatencyRows);
  ParsedArchitectures parsed(space);
  for (DeviceSamples& d : out) {
    // No ReadCounts: counting distinct strings costs as much as reading the rows, and the
    // trainer reads the latencies themselves.
    if (absl::Status s = ReadLabels(db, d.device); !s.ok()) return s;
    descriptor.Bind(1, d.device.id());
    if (descriptor.Step()) {
      d.descriptor.emplace();
      d.descriptor->ParseFromString(descriptor.ColumnBlob(0));
    }
    if (!descriptor.status().ok()) return descriptor.status();
    descriptor.Reset();

    rows.Bind(1, d.device.id());
    rows.Bind(2, SpaceName(space));
    rows.Bind(3, absl::string_view(""));
    absl::StatusOr<std::vector<ArchitectureLatency>> latencies =
        MedianPerArchitecture(rows, parsed);
    if (!rows.status().ok()) return rows.status();
    if (!latencies.ok()) return latencies.status();
    d.latency_ms = *std::move(latencies);
    rows.Reset();
  }
  return out;
}

absl::StatusOr<bool> Store::PutDescriptor(const maplex::v1::ReportDescriptorRequest& descriptor,
                                          int64_t reported_at_unix_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string blob = SerializeOrDie(descriptor);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  bool changed = true;
  {
    Statement old(db_, "SELECT descriptor FROM descriptors WHERE device_id = ?1");
    old.Bind(1, descriptor.device_id());
    if (old.Step()) {
      // Compared as messages: equal content may serialize in another field order.
      maplex::v1::ReportDescriptorRequest stored;
      changed = !stored.ParseFromString(old.ColumnBlob(0)) ||
                !google::protobuf::util::MessageDifferencer::Equals(stored, descriptor);
    }
    if (!old.status().ok()) return old.status();
  }
  Statement s(db_,
              "INSERT OR REPLACE INTO descriptors (device_id, reported_at_ms, descriptor) "
              "VALUES (?1, ?2, ?3)");
  s.Bind(1, descriptor.device_id());
  s.Bind(2, reported_at_unix_ms);
  s.BindBlob(3, blob);
  if (absl::Status st = s.Run(); !st.ok()) return st;
  BeforeCommit();
  if (absl::Status st = tx.Commit(); !st.ok()) return st;
  return changed;
}

absl::StatusOr<uint64_t> Store::AddModel(maplex::v1::ModelInfo info,
                                         const maplex::v1::ModelSnapshot& snapshot, int keep_newest,
                                         absl::Span<const uint64_t> pinned) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  absl::StatusOr<int64_t> last = QueryInt(db_, "SELECT coalesce(max(version), 0) FROM models");
  if (!last.ok()) return last.status();
  info.set_version(static_cast<uint64_t>(*last + 1));
  info.set_serving(false);
  Statement s(db_,
              "INSERT INTO models (version, method, created_at_ms, info, snapshot) VALUES "
              "(?1, ?2, ?3, ?4, ?5)");
  s.Bind(1, static_cast<int64_t>(info.version()));
  s.Bind(2, info.method());
  s.Bind(3, info.created_at_unix_ms());
  s.BindBlob(4, SerializeOrDie(info));
  s.BindBlob(5, SerializeOrDie(snapshot));
  if (absl::Status st = s.Run(); !st.ok()) return st;
  if (keep_newest > 0) {
    if (absl::StatusOr<int> deleted = DeleteOldModelsLocked(keep_newest, pinned); !deleted.ok()) {
      return deleted.status();
    }
  }
  BeforeCommit();
  if (absl::Status st = tx.Commit(); !st.ok()) return st;
  return info.version();
}

absl::StatusOr<int> Store::DeleteOldModels(int keep_newest, absl::Span<const uint64_t> pinned) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  absl::StatusOr<int> deleted = DeleteOldModelsLocked(keep_newest, pinned);
  if (!deleted.ok() || *deleted == 0) return deleted;
  BeforeCommit();
  if (absl::Status st = tx.Commit(); !st.ok()) return st;
  return deleted;
}

absl::StatusOr<int> Store::DeleteOldModelsLocked(int keep_newest,
                                                 absl::Span<const uint64_t> pinned) {
  std::vector<int64_t> doomed;
  {
    Statement s(db_, "SELECT version FROM models ORDER BY version DESC LIMIT -1 OFFSET ?1");
    s.Bind(1, int64_t{std::max(keep_newest, 0)});
    while (s.Step()) {
      const int64_t v = s.ColumnInt(0);
      if (std::find(pinned.begin(), pinned.end(), static_cast<uint64_t>(v)) == pinned.end()) {
        doomed.push_back(v);
      }
    }
    if (!s.status().ok()) return s.status();
  }
  Statement del(db_, "DELETE FROM models WHERE version = ?1");
  for (int64_t v : doomed) {
    del.Bind(1, v);
    if (absl::Status st = del.Run(); !st.ok()) return st;
    del.Reset();
  }
  return static_cast<int>(doomed.size());
}

absl::StatusOr<std::vector<maplex::v1::ModelInfo>> Store::ListModels(uint64_t before_version,
                                                                     int limit) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  Statement s(r.db(),
              "SELECT info FROM models WHERE ?1 = 0 OR version < ?1 ORDER BY version DESC "
              "LIMIT ?2");
  s.Bind(1, static_cast<int64_t>(before_version));
  s.Bind(2, int64_t{limit > 0 ? limit : -1});
  std::vector<maplex::v1::ModelInfo> models;
  while (s.Step()) models.emplace_back().ParseFromString(s.ColumnBlob(0));
  if (!s.status().ok()) return s.status();
  return models;
}

absl::StatusOr<bool> Store::HasModel(uint64_t version) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  Statement s(r.db(), "SELECT 1 FROM models WHERE version = ?1");
  s.Bind(1, static_cast<int64_t>(version));
  const bool stored = s.Step();
  if (!s.status().ok()) return s.status();
  return stored;
}

absl::StatusOr<Store::StoredModel> Store::GetModel(uint64_t version) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  Statement s(r.db(), "SELECT info, snapshot FROM models WHERE version = ?1");
  s.Bind(1, static_cast<int64_t>(version));
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return absl::NotFoundError(absl::StrCat("model_version: version ", version, " is not stored"));
  }
  StoredModel model;
  if (!model.info.ParseFromString(s.ColumnBlob(0)) ||
      !model.snapshot.ParseFromString(s.ColumnBlob(1))) {
    return absl::DataLossError(absl::StrCat("stored model version ", version, " does not parse"));
  }
  return model;
}

absl::StatusOr<maplex::v1::ModelInfo> Store::GetModelInfo(uint64_t version) {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  Statement s(db, "SELECT info FROM models WHERE version = ?1");
  s.Bind(1, static_cast<int64_t>(version));
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return absl::NotFoundError(absl::StrCat("model_version: version ", version, " is not stored"));
  }
  maplex::v1::ModelInfo info;
  info.ParseFromString(s.ColumnBlob(0));
  return info;
}

absl::StatusOr<std::optional<Store::StoredModel>> Store::LatestModel() {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  Statement s(db, "SELECT info, snapshot FROM models ORDER BY version DESC LIMIT 1");
  if (!s.Step()) {
    if (!s.status().ok()) return s.status();
    return std::nullopt;
  }
  StoredModel model;
  if (!model.info.ParseFromString(s.ColumnBlob(0)) ||
      !model.snapshot.ParseFromString(s.ColumnBlob(1))) {
    return absl::DataLossError("the newest stored model does not parse");
  }
  return model;
}

// --- tokens ---

namespace {

constexpr char kTokenColumns[] =
    "id, name, role, device_id, secret_sha256, created_at_ms, revoked_at_ms";

StoredToken TokenFromRow(const Statement& s) {
  StoredToken t;
  t.token.set_id(s.ColumnInt(0));
  t.token.set_name(s.ColumnText(1));
  t.token.set_role(static_cast<maplex::v1::Role>(s.ColumnInt(2)));
  t.token.set_device_id(s.ColumnText(3));
  t.secret_sha256 = s.ColumnBlob(4);
  t.token.set_created_at_unix_ms(s.ColumnInt(5));
  t.token.set_revoked(!s.ColumnIsNull(6));
  return t;
}

}  // namespace

absl::StatusOr<StoredToken> Store::AddToken(const maplex::v1::Token& token,
                                            const std::string& secret_sha256) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement insert(db_,
                   "INSERT INTO tokens (name, role, device_id, secret_sha256, created_at_ms) "
                   "VALUES (?1, ?2, ?3, ?4, ?5)");
  int64_t now = NowMs();
  insert.Bind(1, token.name());
  insert.Bind(2, int64_t{token.role()});
  insert.Bind(3, token.device_id());
  insert.BindBlob(4, secret_sha256);
  insert.Bind(5, now);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  if (absl::Status s = insert.Run(); !s.ok()) return s;
  const int64_t id = sqlite3_last_insert_rowid(db_);
  BeforeCommit();
  if (absl::Status s = tx.Commit(); !s.ok()) return s;
  StoredToken stored;
  stored.token = token;
  stored.token.set_id(id);
  stored.token.set_created_at_unix_ms(now);
  stored.token.set_revoked(false);
  stored.secret_sha256 = secret_sha256;
  return stored;
}

absl::StatusOr<std::vector<StoredToken>> Store::ListTokens() {
  ReadLease r = Read();
  if (!r.status().ok()) return r.status();
  sqlite3* const db = r.db();
  Statement s(db, absl::StrCat("SELECT ", kTokenColumns, " FROM tokens ORDER BY id"));
  std::vector<StoredToken> tokens;
  while (s.Step()) tokens.push_back(TokenFromRow(s));
  if (!s.status().ok()) return s.status();
  return tokens;
}

absl::StatusOr<StoredToken> Store::RevokeToken(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  Statement update(db_,
                   "UPDATE tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL");
  update.Bind(1, id);
  update.Bind(2, NowMs());
  if (absl::Status s = update.Run(); !s.ok()) return s;
  StoredToken token;
  {
    Statement s(db_, absl::StrCat("SELECT ", kTokenColumns, " FROM tokens WHERE id = ?1"));
    s.Bind(1, id);
    if (!s.Step()) {
      if (!s.status().ok()) return s.status();
      return absl::NotFoundError(absl::StrCat("id: no token ", id));
    }
    token = TokenFromRow(s);
  }
  BeforeCommit();
  if (absl::Status s = tx.Commit(); !s.ok()) return s;
  return token;
}

}  // namespace maplex::server

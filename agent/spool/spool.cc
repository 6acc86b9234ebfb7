#include "agent/spool/spool.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "platform/sqlite.h"

namespace maplex::agent {
namespace {

// 'MXSP': marks the file as a maplex-agent spool.
constexpr int kApplicationId = 0x4D585350;

// Forward migrations from `version`, all or nothing: a spool written by an older agent
// keeps its queue.
absl::Status Migrate(sqlite3* db, int64_t version) {
  Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  if (version < 1) {
    absl::Status s = Exec(db,
                          "CREATE TABLE IF NOT EXISTS spool ("
                          "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                          "  measurement_id TEXT NOT NULL UNIQUE,"
                          "  measurement BLOB NOT NULL);"
                          "CREATE TABLE dead_letters ("
                          "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                          "  measurement_id TEXT NOT NULL UNIQUE,"
                          "  measurement BLOB NOT NULL,"
                          "  reason TEXT NOT NULL,"
                          "  refused_at_ms INTEGER NOT NULL);");
    if (!s.ok()) return s;
  }
  if (version != Spool::kSchemaVersion) {
    absl::Status s = Exec(db, absl::StrCat("PRAGMA user_version = ", Spool::kSchemaVersion));
    if (!s.ok()) return s;
  }
  return tx.Commit();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const std::string& path, SpoolOptions options) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  auto fail = [db](absl::Status s) {
    sqlite3_close_v2(db);  // closes once statements still in scope are finalized
    return s;
  };
  if (rc != SQLITE_OK) return fail(SqliteError(db, rc, absl::StrCat("open spool ", path)));
  sqlite3_busy_timeout(db, 5000);
  int64_t version = 0;
  {  // statements are finalized before the journal mode can change
    Statement probe(db, "SELECT count(*) FROM sqlite_master");
    int64_t tables = probe.Step() ? probe.ColumnInt(0) : 0;
    if (!probe.status().ok()) {
      return fail(absl::FailedPreconditionError(
          absl::StrCat(path, " is not a readable SQLite file: ", probe.status().message())));
    }
    if (tables > 0) {
      Statement app(db, "PRAGMA application_id");
      if (!app.Step() || app.ColumnInt(0) != kApplicationId) {
        return fail(absl::FailedPreconditionError(
            absl::StrCat(path, " is not a maplex-agent spool; refusing to use it")));
      }
      Statement user_version(db, "PRAGMA user_version");
      version = user_version.Step() ? user_version.ColumnInt(0) : 0;
      if (!user_version.status().ok()) return fail(user_version.status());
      if (version > kSchemaVersion) {
        return fail(absl::FailedPreconditionError(
            absl::StrCat(path, " has spool schema ", version, ", newer than this agent's ",
                         kSchemaVersion, "; upgrade maplex-agent (the file is left as it is)")));
      }
    }
  }
  // synchronous=FULL: a measurement reported as spooled survives a crash of the machine.
  absl::Status s = Exec(db, absl::StrCat("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                                         "PRAGMA application_id = ",
                                         kApplicationId, ";"));
  if (!s.ok()) return fail(s);
  if (s = Migrate(db, version); !s.ok()) return fail(s);
  return std::unique_ptr<Spool>(new Spool(db, options));
}

Spool::~Spool() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_close(db_);
}

absl::Status Spool::Add(const maplex::v1::Measurement& m) {
  if (m.id().empty()) return absl::InvalidArgumentError("a spooled measurement needs an id");
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_,
              "INSERT INTO spool (measurement_id, measurement) VALUES (?1, ?2) "
              "ON CONFLICT (measurement_id) DO NOTHING");
  s.Bind(1, m.id());
  s.BindBlob(2, m.SerializeAsString());
  return s.Run();
}

absl::StatusOr<std::vector<maplex::v1::Measurement>> Spool::Pending(int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "SELECT measurement FROM spool ORDER BY seq LIMIT ?1");
  s.Bind(1, int64_t{limit});
  std::vector<maplex::v1::Measurement> out;
  while (s.Step()) {
    if (!out.emplace_back().ParseFromString(s.ColumnBlob(0))) {
      return absl::DataLossError("a spooled measurement does not parse");
    }
  }
  if (!s.status().ok()) return s.status();
  return out;
}

absl::Status Spool::Remove(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  Statement s(db_, "DELETE FROM spool WHERE measurement_id = ?1");
  for (const std::string& id : ids) {
    s.Bind(1, id);
    if (absl::Status st = s.Run(); !st.ok()) return st;
    s.Reset();
  }
  return tx.Commit();
}

absl::StatusOr<int64_t> Spool::Depth() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "SELECT count(*) FROM spool");
  int64_t n = s.Step() ? s.ColumnInt(0) : 0;
  if (!s.status().ok()) return s.status();
  return n;
}

absl::StatusOr<int64_t> Spool::MoveToDeadLetters(const std::vector<std::string>& ids,
                                                 const std::string& reason,
                                                 int64_t refused_at_unix_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  // REPLACE: a requeued measurement refused again keeps only its latest refusal.
  Statement copy(db_,
                 "INSERT OR REPLACE INTO dead_letters (measurement_id, measurement, reason, "
                 "refused_at_ms) SELECT measurement_id, measurement, ?2, ?3 FROM spool "
                 "WHERE measurement_id = ?1");
  Statement remove(db_, "DELETE FROM spool WHERE measurement_id = ?1");
  for (const std::string& id : ids) {
    copy.Bind(1, id);
    copy.Bind(2, reason);
    copy.Bind(3, refused_at_unix_ms);
    if (absl::Status st = copy.Run(); !st.ok()) return st;
    copy.Reset();
    remove.Bind(1, id);
    if (absl::Status st = remove.Run(); !st.ok()) return st;
    remove.Reset();
  }
  Statement trim(db_,
                 "DELETE FROM dead_letters WHERE seq NOT IN "
                 "(SELECT seq FROM dead_letters ORDER BY seq DESC LIMIT ?1)");
  trim.Bind(1, options_.max_dead_letters);
  if (absl::Status st = trim.Run(); !st.ok()) return st;
  const int64_t dropped = sqlite3_changes(db_);
  if (absl::Status st = tx.Commit(); !st.ok()) return st;
  return dropped;
}

absl::StatusOr<std::vector<DeadLetter>> Spool::DeadLetters(int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_,
              "SELECT measurement, reason, refused_at_ms FROM dead_letters ORDER BY seq LIMIT ?1");
  s.Bind(1, int64_t{limit});
  std::vector<DeadLetter> out;
  while (s.Step()) {
    DeadLetter& d = out.emplace_back();
    if (!d.measurement.ParseFromString(s.ColumnBlob(0))) {
      return absl::DataLossError("a dead-lettered measurement does not parse");
    }
    d.reason = s.ColumnText(1);
    d.refused_at_unix_ms = s.ColumnInt(2);
  }
  if (!s.status().ok()) return s.status();
  return out;
}

absl::StatusOr<int64_t> Spool::DeadLetterCount() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "SELECT count(*) FROM dead_letters");
  int64_t n = s.Step() ? s.ColumnInt(0) : 0;
  if (!s.status().ok()) return s.status();
  return n;
}

absl::StatusOr<int64_t> Spool::RequeueDeadLetters() {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction tx(db_);
  if (!tx.status().ok()) return tx.status();
  Statement copy(db_,
                 "INSERT OR IGNORE INTO spool (measurement_id, measurement) "
                 "SELECT measurement_id, measurement FROM dead_letters ORDER BY seq");
  if (absl::Status st = copy.Run(); !st.ok()) return st;
  Statement clear(db_, "DELETE FROM dead_letters");
  if (absl::Status st = clear.Run(); !st.ok()) return st;
  const int64_t moved = sqlite3_changes(db_);
  if (absl::Status st = tx.Commit(); !st.ok()) return st;
  return moved;
}

absl::StatusOr<int64_t> Spool::ClearDeadLetters() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement clear(db_, "DELETE FROM dead_letters");
  if (absl::Status st = clear.Run(); !st.ok()) return st;
  return int64_t{sqlite3_changes(db_)};
}

}  // namespace maplex::agent

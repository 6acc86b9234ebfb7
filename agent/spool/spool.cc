#include "agent/spool/spool.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "platform/sqlite.h"

namespace maplex::agent {
namespace {

// 'MXSP': marks the file as a maplex-agent spool.
constexpr int kApplicationId = 0x4D585350;

}  // namespace

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const std::string& path) {
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
    }
  }
  // synchronous=FULL: a measurement reported as spooled survives a crash of the machine.
  absl::Status s = Exec(db, absl::StrCat(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                                "PRAGMA application_id = ",
                                kApplicationId,
                                "; CREATE TABLE IF NOT EXISTS spool ("
                                "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                                "  measurement_id TEXT NOT NULL UNIQUE,"
                                "  measurement BLOB NOT NULL)"));
  if (!s.ok()) return fail(s);
  return std::unique_ptr<Spool>(new Spool(db));
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

}  // namespace maplex::agent

#include "platform/sqlite_backup.h"

#include <sqlite3.h>

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "platform/sqlite.h"

namespace maplex {
namespace {

// Closes on scope exit.
struct Connection {
  sqlite3* db = nullptr;
  ~Connection() { sqlite3_close(db); }
};

absl::Status Open(const std::string& path, int flags, Connection* c) {
  int rc = sqlite3_open_v2(path.c_str(), &c->db, flags, nullptr);
  if (rc != SQLITE_OK) return SqliteError(c->db, rc, absl::StrCat("open ", path));
  sqlite3_busy_timeout(c->db, 5000);
  return absl::OkStatus();
}

absl::Status CheckApplicationId(sqlite3* db, const std::string& path, int32_t expected) {
  // A file that is not SQLite fails this first read with SQLITE_NOTADB.
  Statement s(db, "PRAGMA application_id");
  int64_t id = 0;
  if (s.Step()) id = s.ColumnInt(0);
  if (!s.status().ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a readable SQLite database (", s.status().message(), ")"));
  }
  if (id != expected) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not a maplex database (application_id %#x, expected %#x)", path, id, expected));
  }
  return absl::OkStatus();
}

absl::Status CopyPages(sqlite3* from, sqlite3* to) {
  sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
  if (backup == nullptr) return SqliteError(to, sqlite3_errcode(to), "start backup");
  int rc = SQLITE_OK;
  // 256 pages (1 MiB) per step: the source is locked only while one step copies.
  while ((rc = sqlite3_backup_step(backup, 256)) == SQLITE_OK || rc == SQLITE_BUSY ||
         rc == SQLITE_LOCKED) {
    if (rc != SQLITE_OK) sqlite3_sleep(10);
  }
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) return SqliteError(to, rc, "backup step");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> BackupDatabase(const std::string& db_path, const std::string& out_path,
                                       int32_t application_id) {
  if (std::filesystem::exists(out_path)) {
    return absl::FailedPreconditionError(
        absl::StrCat(out_path, " exists; a backup never overwrites a file"));
  }
  Connection source;
  if (absl::Status s = Open(db_path, SQLITE_OPEN_READWRITE, &source); !s.ok()) return s;
  if (absl::Status s = CheckApplicationId(source.db, db_path, application_id); !s.ok()) return s;
  const std::string partial = out_path + ".partial";
  std::filesystem::remove(partial);
  absl::Status copied = [&]() -> absl::Status {
    Connection copy;
    if (absl::Status s = Open(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &copy);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CopyPages(source.db, copy.db); !s.ok()) return s;
    // The copy keeps the source's WAL mode; fold everything into the one file.
    if (absl::Status s =
            Exec(copy.db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;");
        !s.ok()) {
      return s;
    }
    Statement check(copy.db, "PRAGMA integrity_check");
    if (!check.Step() || check.ColumnText(0) != "ok") {
      return absl::DataLossError(absl::StrCat("the copy in ", partial, " fails integrity_check"));
    }
    return check.status();
  }();
  if (!copied.ok()) {
    std::filesystem::remove(partial);
    return copied;
  }
  std::error_code error;
  std::filesystem::rename(partial, out_path, error);
  if (error)
    return absl::InternalError(absl::StrCat("rename to ", out_path, ": ", error.message()));
  return static_cast<int64_t>(std::filesystem::file_size(out_path));
}

}  // namespace maplex

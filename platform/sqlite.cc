#include "platform/sqlite.h"

#include "absl/strings/str_cat.h"

namespace maplex {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view doing) {
  std::string message = absl::StrCat(doing, ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_errcode(db) == rc) absl::StrAppend(&message, " (", sqlite3_errmsg(db), ")");
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status Exec(sqlite3* db, absl::string_view sql) {
  std::string owned(sql);
  int rc = sqlite3_exec(db, owned.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, absl::StrCat("exec `", sql.substr(0, 60), "`"));
  return absl::OkStatus();
}

Statement::Statement(sqlite3* db, absl::string_view sql) : db_(db) {
  Check(sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr),
        absl::StrCat("prepare `", sql.substr(0, 60), "`"));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::Check(int rc, absl::string_view doing) {
  if (status_.ok() && rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) {
    status_ = SqliteError(db_, rc, doing);
  }
}

void Statement::Bind(int index, int64_t value) {
  if (status_.ok()) Check(sqlite3_bind_int64(stmt_, index, value), "bind");
}
void Statement::Bind(int index, double value) {
  if (status_.ok()) Check(sqlite3_bind_double(stmt_, index, value), "bind");
}
void Statement::Bind(int index, absl::string_view text) {
  if (status_.ok()) {
    Check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                            SQLITE_TRANSIENT),
          "bind");
  }
}
void Statement::BindBlob(int index, absl::string_view bytes) {
  if (status_.ok()) {
    Check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                            SQLITE_TRANSIENT),
          "bind");
  }
}
void Statement::BindUnowned(int index, absl::string_view text) {
  if (status_.ok()) {
    Check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                            SQLITE_STATIC),
          "bind");
  }
}
void Statement::BindBlobUnowned(int index, absl::string_view bytes) {
  if (status_.ok()) {
    Check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                            SQLITE_STATIC),
          "bind");
  }
}
void Statement::BindNull(int index) {
  if (status_.ok()) Check(sqlite3_bind_null(stmt_, index), "bind");
}

bool Statement::Step() {
  if (!status_.ok()) return false;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  Check(rc, "step");
  return false;
}

absl::Status Statement::Run() {
  while (Step()) {
  }
  return status_;
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  return text == nullptr ? std::string()
                         : std::string(reinterpret_cast<const char*>(text),
                                       sqlite3_column_bytes(stmt_, column));
}
absl::string_view Statement::ColumnTextView(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  return text == nullptr ? absl::string_view()
                         : absl::string_view(reinterpret_cast<const char*>(text),
                                             sqlite3_column_bytes(stmt_, column));
}
std::string Statement::ColumnBlob(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  return blob == nullptr ? std::string()
                         : std::string(static_cast<const char*>(blob),
                                       sqlite3_column_bytes(stmt_, column));
}

Transaction::Transaction(sqlite3* db) : db_(db) { status_ = Exec(db, "BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (status_.ok() && !done_) Exec(db_, "ROLLBACK").IgnoreError();
}

absl::Status Transaction::Commit() {
  if (!status_.ok()) return status_;
  absl::Status s = Exec(db_, "COMMIT");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace maplex

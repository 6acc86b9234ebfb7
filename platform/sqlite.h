// Thin RAII wrappers over the SQLite C API, shared by the server's store and the agent's
// spool, that turn its result codes into absl::Status.
//
//   Statement s(db, "SELECT id FROM devices WHERE category = ?1");
//   s.Bind(1, "desktop_gpu");
//   while (s.Step()) Use(s.ColumnText(0));
//   if (!s.status().ok()) return s.status();
#ifndef MAPLEX_PLATFORM_SQLITE_H_
#define MAPLEX_PLATFORM_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace maplex {

// The status for SQLite result `rc` on `db`, naming what was being done.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view doing);

// Runs one or more statements that return no rows.
absl::Status Exec(sqlite3* db, absl::string_view sql);

// A prepared statement. A failed prepare, bind or step is kept in status(); later calls
// are no-ops, so a caller checks once at the end.
class Statement {
 public:
  Statement(sqlite3* db, absl::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based.
  void Bind(int index, int64_t value);
  void Bind(int index, double value);
  void Bind(int index, absl::string_view text);
  void BindBlob(int index, absl::string_view bytes);
  // As Bind/BindBlob, without SQLite's copy of the bytes: the caller keeps them alive and
  // unchanged until the statement was stepped and Reset (a bulk insert binds its rows'
  // strings in place, as the raw SQLite baseline of bench/service_bench.cc does).
  void BindUnowned(int index, absl::string_view text);
  void BindBlobUnowned(int index, absl::string_view bytes);
  void BindNull(int index);

  // True while a row is available; false when done or on error (see status()).
  bool Step();
  // Steps a statement that returns no rows.
  absl::Status Run();
  // Clears bindings and rewinds, for reuse with new parameters.
  void Reset();

  int64_t ColumnInt(int column) const;
  double ColumnDouble(int column) const;
  bool ColumnIsNull(int column) const;
  std::string ColumnText(int column) const;
  // The text of `column` without copying it: valid until the statement steps, resets or
  // is destroyed (for loops over many rows, e.g. the trainer's load).
  absl::string_view ColumnTextView(int column) const;
  std::string ColumnBlob(int column) const;

  const absl::Status& status() const { return status_; }

 private:
  void Check(int rc, absl::string_view doing);

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db);
  ~Transaction();
  const absl::Status& status() const { return status_; }
  absl::Status Commit();

 private:
  sqlite3* db_;
  absl::Status status_;
  bool done_ = false;
};

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_SQLITE_H_

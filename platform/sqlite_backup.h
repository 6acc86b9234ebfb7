// An online copy of a SQLite database file, taken while other processes write to it: the
// `maplex backup` command (client) and Store::Backup (server) share it, so the client needs
// no server code to copy the server's database.
//
//   absl::StatusOr<int64_t> bytes =
//       BackupDatabase("/var/lib/maplex/maplex.db", "/backup/maplex.db", kMaplexApplicationId);
#ifndef MAPLEX_PLATFORM_SQLITE_BACKUP_H_
#define MAPLEX_PLATFORM_SQLITE_BACKUP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace maplex {

// PRAGMA application_id of maplex-server's database (ASCII "MPLX"), which tells it from
// any other SQLite file.
inline constexpr int32_t kMaplexApplicationId = 0x4D504C58;

// Copies the database at `db_path` to the new file `out_path` with SQLite's online backup
// API: safe while a server writes to it (the copy is one consistent snapshot; writers are
// held up for one page batch at a time, never for the whole copy). The copy is written
// beside `out_path` (".partial"), checked with integrity_check and then renamed into place,
// so `out_path` never holds a partial copy; the copy is a single file (no WAL). Returns the
// copy's size in bytes. FailedPrecondition when `out_path` exists, or when `db_path` is not
// a SQLite database whose application_id is `application_id` (an empty file included);
// DataLoss when the copy fails integrity_check; the SQLite error otherwise.
absl::StatusOr<int64_t> BackupDatabase(const std::string& db_path, const std::string& out_path,
                                       int32_t application_id);

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_SQLITE_BACKUP_H_

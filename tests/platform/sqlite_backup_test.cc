#include "platform/sqlite_backup.h"

#include <sqlite3.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "platform/sqlite.h"
#include "tests/testing/temp_dir.h"

namespace maplex {
namespace {

using ::maplex::testing::TempDir;
using ::testing::HasSubstr;

// A WAL-mode database with `application_id` and one table of `rows` rows.
void MakeDatabase(const std::string& path, int32_t application_id, int rows) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_TRUE(Exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);").ok());
  ASSERT_TRUE(Exec(db, "PRAGMA application_id = " + std::to_string(application_id)).ok());
  for (int i = 0; i < rows; ++i) {
    ASSERT_TRUE(Exec(db, "INSERT INTO t VALUES (" + std::to_string(i) + ")").ok());
  }
  sqlite3_close(db);
}

int64_t CountRows(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  int64_t n = -1;
  {
    // Finalized before the close: a connection with a live statement does not close (and leaks).
    Statement s(db, "SELECT count(*) FROM t");
    if (s.Step()) n = s.ColumnInt(0);
  }
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
  return n;
}

TEST(BackupDatabaseTest, CopiesIntoOneNewFile) {
  TempDir dir;
  MakeDatabase(dir.File("a.db"), kMaplexApplicationId, 50);
  absl::StatusOr<int64_t> bytes =
      BackupDatabase(dir.File("a.db"), dir.File("b.db"), kMaplexApplicationId);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, static_cast<int64_t>(std::filesystem::file_size(dir.File("b.db"))));
  EXPECT_EQ(CountRows(dir.File("b.db")), 50);
  EXPECT_FALSE(std::filesystem::exists(dir.File("b.db-wal")));
  EXPECT_FALSE(std::filesystem::exists(dir.File("b.db.partial")));
}

TEST(BackupDatabaseTest, NeverOverwritesAndRefusesOtherFiles) {
  TempDir dir;
  MakeDatabase(dir.File("a.db"), kMaplexApplicationId, 1);
  ASSERT_TRUE(BackupDatabase(dir.File("a.db"), dir.File("b.db"), kMaplexApplicationId).ok());
  absl::StatusOr<int64_t> again =
      BackupDatabase(dir.File("a.db"), dir.File("b.db"), kMaplexApplicationId);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("exists"));

  MakeDatabase(dir.File("other.db"), 0x1234, 1);
  absl::StatusOr<int64_t> other =
      BackupDatabase(dir.File("other.db"), dir.File("c.db"), kMaplexApplicationId);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.status().message(), HasSubstr("not a maplex database"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("c.db")));

  {
    std::FILE* f = std::fopen(dir.File("text.db").c_str(), "w");
    std::fputs("this is not a database, just some text that is long enough to have a header", f);
    std::fclose(f);
  }
  EXPECT_EQ(
      BackupDatabase(dir.File("text.db"), dir.File("d.db"), kMaplexApplicationId).status().code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(BackupDatabase(dir.File("missing.db"), dir.File("e.db"), kMaplexApplicationId).ok());
}

}  // namespace
}  // namespace maplex

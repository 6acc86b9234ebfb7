#include "agent/spool/spool.h"

#include <sqlite3.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace maplex::agent {
namespace {

v1::Measurement M(const std::string& id, double ms) {
  v1::Measurement m;
  m.set_id(id);
  m.set_device_id("d");
  m.mutable_arch()->set_index(3);
  m.mutable_stats()->set_median_ms(ms);
  return m;
}

google::protobuf::RepeatedPtrField<std::string> Ids(std::initializer_list<const char*> ids) {
  google::protobuf::RepeatedPtrField<std::string> out;
  for (const char* id : ids) *out.Add() = id;
  return out;
}

TEST(SpoolTest, KeepsOrderSurvivesReopenAndForgetsOnlyAcked) {
  maplex::testing::TempDir dir;
  {
    auto spool = *Spool::Open(dir.File("spool.db"));
    ASSERT_TRUE(spool->Add(M("a", 1)).ok());
    ASSERT_TRUE(spool->Add(M("b", 2)).ok());
    ASSERT_TRUE(spool->Add(M("c", 3)).ok());
    ASSERT_TRUE(spool->Add(M("b", 2)).ok());  // already spooled: no-op
    EXPECT_EQ(*spool->Depth(), 3);
  }
  auto spool = *Spool::Open(dir.File("spool.db"));
  auto pending = spool->Pending(2);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].id(), "a");
  EXPECT_EQ((*pending)[1].stats().median_ms(), 2);
  ASSERT_TRUE(spool->Remove(Ids({"a", "zzz"})).ok());
  EXPECT_EQ(*spool->Depth(), 2);
  EXPECT_EQ((*spool->Pending(10))[0].id(), "b");
}

TEST(SpoolTest, RefusesForeignFilesAndIdlessMeasurements) {
  maplex::testing::TempDir dir;
  std::ofstream(dir.File("junk")) << std::string(5000, 'j');
  EXPECT_EQ(Spool::Open(dir.File("junk")).status().code(), absl::StatusCode::kFailedPrecondition);
  auto spool = *Spool::Open(dir.File("spool.db"));
  EXPECT_EQ(spool->Add(M("", 1)).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SpoolTest, DeadLettersLeaveTheQueueWithTheirReasonAndCanBeRequeuedOrCleared) {
  maplex::testing::TempDir dir;
  {
    auto spool = *Spool::Open(dir.File("spool.db"));
    for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(spool->Add(M(id, 1)).ok());
    auto dropped = spool->MoveToDeadLetters({"b", "unknown"}, "NOT_FOUND: no device", 1234);
    ASSERT_TRUE(dropped.ok()) << dropped.status();
    EXPECT_EQ(*dropped, 0);
    EXPECT_EQ(*spool->Depth(), 2);
    EXPECT_EQ((*spool->Pending(10))[1].id(), "c");  // "b" no longer holds "c" back
  }
  auto spool = *Spool::Open(dir.File("spool.db"));  // dead letters are on disk
  auto letters = spool->DeadLetters(10);
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_EQ(letters->size(), 1u);
  EXPECT_EQ((*letters)[0].measurement.id(), "b");
  EXPECT_EQ((*letters)[0].reason, "NOT_FOUND: no device");
  EXPECT_EQ((*letters)[0].refused_at_unix_ms, 1234);
  EXPECT_EQ(*spool->RequeueDeadLetters(), 1);
  EXPECT_EQ(*spool->DeadLetterCount(), 0);
  auto pending = *spool->Pending(10);
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[2].id(), "b");  // back at the end of the queue
  ASSERT_TRUE(spool->MoveToDeadLetters({"a", "b"}, "INVALID_ARGUMENT", 5).ok());
  EXPECT_EQ(*spool->ClearDeadLetters(), 2);
  EXPECT_EQ(*spool->DeadLetterCount(), 0);
  EXPECT_EQ(*spool->Depth(), 1);
}

TEST(SpoolTest, DeadLettersAreBoundedDroppingTheOldest) {
  maplex::testing::TempDir dir;
  SpoolOptions options;
  options.max_dead_letters = 3;
  auto spool = *Spool::Open(dir.File("spool.db"), options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(spool->Add(M(std::to_string(i), 1)).ok());
  EXPECT_EQ(*spool->MoveToDeadLetters({"0", "1"}, "r", 1), 0);
  EXPECT_EQ(*spool->MoveToDeadLetters({"2", "3", "4"}, "r", 2), 2);
  auto letters = *spool->DeadLetters(10);
  ASSERT_EQ(letters.size(), 3u);
  EXPECT_EQ(letters[0].measurement.id(), "2");
  EXPECT_EQ(letters[2].measurement.id(), "4");
}

// A spool written by an agent before dead letters existed (schema 0: the queue table, no
// user_version) is migrated at Open without losing a queued measurement.
TEST(SpoolTest, MigratesASpoolOfTheOldSchemaKeepingEveryRow) {
  maplex::testing::TempDir dir;
  const std::string path = dir.File("old-spool.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "PRAGMA journal_mode = WAL; PRAGMA application_id = 1297634128;"
                           "CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                           "  measurement_id TEXT NOT NULL UNIQUE, measurement BLOB NOT NULL)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_stmt* insert = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(db, "INSERT INTO spool (measurement_id, measurement) VALUES (?1, ?2)",
                           -1, &insert, nullptr),
        SQLITE_OK);
    for (int i = 0; i < 250; ++i) {
      const std::string id = "old-" + std::to_string(i);
      const std::string blob = M(id, 1 + i).SerializeAsString();
      sqlite3_bind_text(insert, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(insert, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
      sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    sqlite3_close(db);
  }
  auto spool = Spool::Open(path);
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_EQ(*(*spool)->Depth(), 250);
  auto pending = *(*spool)->Pending(1000);
  ASSERT_EQ(pending.size(), 250u);
  EXPECT_EQ(pending[0].id(), "old-0");
  EXPECT_EQ(pending[249].stats().median_ms(), 250);
  // The migrated file has the dead-letter table and works like a new one.
  ASSERT_TRUE((*spool)->MoveToDeadLetters({"old-7"}, "r", 1).ok());
  EXPECT_EQ(*(*spool)->DeadLetterCount(), 1);
  ASSERT_TRUE((*spool)->Add(M("new", 1)).ok());
  EXPECT_EQ(*(*spool)->Depth(), 250);
}

TEST(SpoolTest, RefusesANewerSchemaAndLeavesItAlone) {
  maplex::testing::TempDir dir;
  const std::string path = dir.File("spool.db");
  { ASSERT_TRUE(Spool::Open(path).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto spool = Spool::Open(path);
  EXPECT_EQ(spool.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(spool.status().message(), ::testing::HasSubstr("newer"));
}

}  // namespace
}  // namespace maplex::agent

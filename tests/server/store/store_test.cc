#include "server/store/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "platform/sqlite_backup.h"

namespace maplex::server {
namespace {

using ::testing::HasSubstr;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("maplex_store_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "maplex.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> OpenStore() {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  static v1::RegisterDeviceRequest Request(const std::string& id, const std::string& fp,
                                           int batch) {
    v1::RegisterDeviceRequest r;
    r.set_id(id);
    r.set_hardware_fingerprint(fp);
    r.set_hardware_name("Test board " + fp);
    r.mutable_config()->set_runtime("eigen");
    r.mutable_config()->set_precision("fp32");
    r.mutable_config()->set_batch_size(batch);
    r.mutable_config()->set_threads(1);
    r.mutable_spec()->set_category("edge_cpu");
    r.mutable_spec()->set_compute_units(4);
    (*r.mutable_labels())["site"] = "lab";
    return r;
  }

  // A measurement of the NB201 architecture with official index `arch`.
  static StoredMeasurement M(const std::string& id, const std::string& device, int arch,
                             double ms) {
    return M(id, device, *core::Nb201Space::Get().ArchitectureAt(arch), ms);
  }
  static StoredMeasurement M(const std::string& id, const std::string& device,
                             const core::Architecture& arch, double ms) {
    StoredMeasurement m;
    m.id = id;
    m.device_id = device;
    m.arch = arch;
    m.stats.set_median_ms(ms);
    m.stats.set_p90_ms(ms * 1.1);
    m.stats.set_repeats(10);
    m.protocol.set_tool("test");
    m.measured_at_unix_ms = 1000;
    return m;
  }

  // NB201 latencies as (official index, ms), by index.
  static std::vector<std::pair<int32_t, double>> ByIndex(
      const std::vector<ArchitectureLatency>& latencies) {
    std::vector<std::pair<int32_t, double>> out;
    for (const auto& [arch, ms] : latencies) {
      out.emplace_back(core::Nb201Space::Get().IndexOf(arch), ms);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::pair<int32_t, double>> Nb201Latencies(Store& store, const std::string& device) {
    auto latencies = store.DeviceLatencies(device, core::Nb201Space::Get());
    EXPECT_TRUE(latencies.ok()) << latencies.status();
    return latencies.ok() ? ByIndex(*latencies) : std::vector<std::pair<int32_t, double>>{};
  }

  std::filesystem::path dir_;
  std::string path_;
};

const core::ArchitectureSpace& Nb201() { return core::Nb201Space::Get(); }

TEST_F(StoreTest, NewDatabaseHasCurrentSchema) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->opened_schema_version(), 0);
  store.reset();
  store = OpenStore();
  EXPECT_EQ(store->opened_schema_version(), Store::kSchemaVersion);
}

TEST_F(StoreTest, RegisterIsIdempotentOnFingerprintAndConfig) {
  auto store = OpenStore();
  auto first = store->RegisterDevice(Request("board_1", "fp-a", 1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->device.spec().compute_units(), 4);
  EXPECT_EQ(first->device.labels().at("site"), "lab");

  auto again = store->RegisterDevice(Request("other_name", "fp-a", 1));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->device.id(), "board_1");

  // Same hardware, another batch size: another configuration.
  auto batch32 = store->RegisterDevice(Request("board_32", "fp-a", 32));
  ASSERT_TRUE(batch32.ok());
  EXPECT_TRUE(batch32->created);

  // The id taken by another configuration.
  auto clash = store->RegisterDevice(Request("board_1", "fp-b", 1));
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(clash.status().message(), HasSubstr("board_1"));
}

TEST_F(StoreTest, DerivesAnIdWhenNoneIsGiven) {
  auto store = OpenStore();
  auto r = store->RegisterDevice(Request("", "0123456789abcdef", 8));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->device.id(), "0123456789ab-eigen-fp32-b8-t1");
}

TEST_F(StoreTest, ListFiltersAndPages) {
  auto store = OpenStore();
  for (int i = 0; i < 5; ++i) {
    auto req = Request("dev" + std::to_string(i), "fp" + std::to_string(i), 1);
    if (i % 2) req.mutable_spec()->set_category("mobile");
    if (i == 3) (*req.mutable_labels())["tier"] = "gold";
    ASSERT_TRUE(store->RegisterDevice(req).ok());
  }
  auto page1 = store->ListDevices({}, "", 2);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[1].id(), "dev1");
  auto page2 = store->ListDevices({}, "dev1", 10);
  ASSERT_EQ(page2->size(), 3u);

  DeviceFilter mobile;
  mobile.category = "mobile";
  EXPECT_EQ(store->ListDevices(mobile, "", 10)->size(), 2u);
  DeviceFilter gold;
  gold.labels["tier"] = "gold";
  gold.labels["site"] = "lab";
  auto golds = store->ListDevices(gold, "", 10);
  ASSERT_EQ(golds->size(), 1u);
  EXPECT_EQ((*golds)[0].id(), "dev3");

  ASSERT_TRUE(store->RetireDevice("dev3").ok());
  EXPECT_EQ(store->ListDevices(gold, "", 10)->size(), 0u);
  gold.include_retired = true;
  EXPECT_TRUE((*store->ListDevices(gold, "", 10))[0].retired());
}

TEST_F(StoreTest, UpdateLabelsSetsAndRemoves) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  auto d = store->UpdateLabels("d", {{"rack", "7"}}, {"site"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->labels().size(), 1u);
  EXPECT_EQ(d->labels().at("rack"), "7");
  EXPECT_EQ(store->UpdateLabels("nope", {}, {}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, MeasurementsAreIdempotentAndSurviveReopen) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
    auto r = store->AddMeasurements({M("m1", "d", 5, 2.0), M("m2", "d", 7, 3.0)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->inserted, 2);
    auto replay = store->AddMeasurements({M("m2", "d", 7, 3.0), M("m3", "d", 5, 4.0)});
    ASSERT_TRUE(replay.ok());
    EXPECT_EQ(replay->inserted, 1);
    EXPECT_EQ(replay->already_stored, 1);
  }
  auto store = OpenStore();
  EXPECT_EQ(*store->MeasurementCount(), 3);
  auto data = store->LoadTrainingData(Nb201());
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data->size(), 1u);
  const DeviceSamples& d = (*data)[0];
  EXPECT_EQ(store->GetDevice("d")->measurement_count(), 2);
  EXPECT_EQ(store->GetDevice("d")->measurement_count_by_space().at("nb201"), 2);
  ASSERT_EQ(d.latency_ms.size(), 2u);
  const auto by_index = ByIndex(d.latency_ms);
  EXPECT_EQ(by_index[0].first, 5);
  EXPECT_DOUBLE_EQ(by_index[0].second, 3.0);  // median of 2.0 and 4.0
  EXPECT_DOUBLE_EQ(by_index[1].second, 3.0);
}

TEST_F(StoreTest, DeviceLatenciesCombineRepeatsAsTrainingDataDoes) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  ASSERT_TRUE(store->RegisterDevice(Request("e", "fp2", 1)).ok());
  ASSERT_TRUE(store->AddMeasurements({M("m1", "d", 9, 2.0), M("m2", "d", 4, 3.0),
                                      M("m3", "d", 9, 4.0), M("m4", "e", 1, 8.0)})
                  .ok());
  auto latencies = store->DeviceLatencies("d", Nb201());
  ASSERT_TRUE(latencies.ok()) << latencies.status();
  EXPECT_EQ(ByIndex(*latencies), (std::vector<std::pair<int32_t, double>>{{4, 3.0}, {9, 3.0}}));
  EXPECT_EQ(store->LoadTrainingData(Nb201())->at(0).latency_ms, *latencies);
  EXPECT_EQ(store->DeviceLatencies("nobody", Nb201()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, FailedBatchStoresNothing) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  // The second row names an unknown device: a foreign-key violation aborts the batch.
  auto r = store->AddMeasurements({M("ok", "d", 1, 1.0), M("bad", "ghost", 2, 1.0)});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(*store->MeasurementCount(), 0);
}

TEST_F(StoreTest, ModelsAreVersionedAndPersist) {
  {
    auto store = OpenStore();
    EXPECT_FALSE(store->LatestModel()->has_value());
    v1::ModelInfo info;
    info.set_method("baseline");
    v1::ModelSnapshot snap;
    snap.set_format_version(1);
    snap.set_method("baseline");
    EXPECT_EQ(*store->AddModel(info, snap), 1u);
    info.set_method("maplex");
    EXPECT_EQ(*store->AddModel(info, snap), 2u);
  }
  auto store = OpenStore();
  auto latest = store->LatestModel();
  ASSERT_TRUE(latest.ok() && latest->has_value());
  EXPECT_EQ((*latest)->info.version(), 2u);
  EXPECT_EQ((*latest)->info.method(), "maplex");
  EXPECT_EQ(store->ListModels()->size(), 2u);
  EXPECT_EQ(store->GetModelInfo(1)->method(), "baseline");
  EXPECT_EQ(store->GetModelInfo(9).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, RefusesAFileThatIsNotSqliteAndLeavesItAlone) {
  const std::string garbage(4096, 'x');
  std::ofstream(path_, std::ios::binary) << garbage;
  auto store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("not a readable SQLite database"));
  std::ifstream in(path_, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, garbage);
}

TEST_F(StoreTest, RefusesAForeignSqliteDatabase) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE songs (title TEXT)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("another application"));
}

TEST_F(StoreTest, RefusesANewerSchema) {
  OpenStore().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 99"));
}

TEST_F(StoreTest, UsesWalAndForeignKeys) {
  auto store = OpenStore();
  store.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

// synchronous and foreign_keys are settings of a connection, not of the file: every
// connection the store opens (the writer and each reader) must have them.
TEST_F(StoreTest, EveryConnectionIsDurableAndChecksForeignKeys) {
  auto store = OpenStore();
  auto synchronous = store->Pragmas("synchronous");
  ASSERT_TRUE(synchronous.ok()) << synchronous.status();
  ASSERT_GE(synchronous->size(), 2u);  // the writer and at least one reader
  for (const std::string& v : *synchronous) EXPECT_EQ(v, "2") << "synchronous is not FULL";
  auto foreign_keys = store->Pragmas("foreign_keys");
  ASSERT_TRUE(foreign_keys.ok());
  for (const std::string& v : *foreign_keys) EXPECT_EQ(v, "1") << "foreign_keys is off";
  auto journal_mode = store->Pragmas("journal_mode");
  ASSERT_TRUE(journal_mode.ok());
  for (const std::string& v : *journal_mode) EXPECT_EQ(v, "wal");
}

TEST_F(StoreTest, AReplayWithOtherContentIsRefusedAndStoresNothingOfItsBatch) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  ASSERT_TRUE(store->RegisterDevice(Request("e", "fp2", 1)).ok());
  ASSERT_TRUE(store->AddMeasurements({M("m1", "d", 5, 2.0)}).ok());
  // Identical: a no-op.
  auto same = store->AddMeasurements({M("m1", "d", 5, 2.0)});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->already_stored, 1);
  // Other latency, other arch, other device: refused, and the batch's new row is not kept.
  for (const StoredMeasurement& changed :
       {M("m1", "d", 5, 2.5), M("m1", "d", 6, 2.0), M("m1", "e", 5, 2.0)}) {
    auto r = store->AddMeasurements({M("new", "d", 9, 1.0), changed});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("\"m1\""));
  }
  EXPECT_EQ(*store->MeasurementCount(), 1);
  EXPECT_EQ(Nb201Latencies(*store, "d"), (std::vector<std::pair<int32_t, double>>{{5, 2.0}}));
}

TEST_F(StoreTest, AReplacingBatchTakesThePlaceOfTheStoredRowsOfItsArchitectures) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  ASSERT_TRUE(store->RegisterDevice(Request("e", "fp2", 1)).ok());
  ASSERT_TRUE(store
                  ->AddMeasurements({M("import:d:5", "d", 5, 2.0), M("agent-1", "d", 5, 2.2),
                                     M("import:d:6", "d", 6, 3.0), M("import:e:5", "e", 5, 9.0)})
                  .ok());
  auto r = store->AddMeasurements({M("import:d:5", "d", 5, 4.0)}, /*replace=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->replaced, 2);  // both rows of (d, 5)
  EXPECT_EQ(r->inserted, 1);
  // (d, 6) and (e, 5) are untouched.
  EXPECT_EQ(Nb201Latencies(*store, "d"),
            (std::vector<std::pair<int32_t, double>>{{5, 4.0}, {6, 3.0}}));
  EXPECT_EQ(Nb201Latencies(*store, "e"), (std::vector<std::pair<int32_t, double>>{{5, 9.0}}));
  // A failing replacing batch deletes nothing.
  auto bad = store->AddMeasurements({M("import:d:6", "d", 6, 5.0), M("x", "ghost", 1, 1.0)},
                                    /*replace=*/true);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(Nb201Latencies(*store, "d").at(1).second, 3.0);
}

// Readers use their own connections: none of them waits for a write transaction that is
// open (here: held open by the test hook, as an fsync or a long batch would).
TEST_F(StoreTest, ReadsDoNotWaitForAnOpenWriteTransaction) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  ASSERT_TRUE(store->AddMeasurements({M("m1", "d", 5, 2.0)}).ok());
  std::promise<void> writer_inside, release;
  std::shared_future<void> released = release.get_future().share();
  store->SetBeforeCommitHookForTest([&writer_inside, released] {
    writer_inside.set_value();
    released.wait();
  });
  std::future<absl::StatusOr<Store::IngestResult>> writer = std::async(
      std::launch::async, [&] { return store->AddMeasurements({M("m2", "d", 6, 3.0)}); });
  writer_inside.get_future().wait();
  // The writer holds the write lock and an open transaction now.
  std::future<bool> reads = std::async(std::launch::async, [&] {
    return store->GetDevice("d").ok() && store->LoadTrainingData(Nb201()).ok() &&
           store->DeviceAcceptsData("d").ok() && store->ListModels().ok() &&
           *store->MeasurementCount() == 1;  // the uncommitted row is not seen
  });
  const bool finished = reads.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  release.set_value();
  ASSERT_TRUE(finished) << "a read waited for the open write transaction";
  EXPECT_TRUE(reads.get());
  ASSERT_TRUE(writer.get().ok());
  store->SetBeforeCommitHookForTest(nullptr);
  EXPECT_EQ(*store->MeasurementCount(), 2);
}

TEST_F(StoreTest, AnIdenticalDescriptorIsReportedAsUnchanged) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  v1::ReportDescriptorRequest descriptor;
  descriptor.set_device_id("d");
  descriptor.set_reference_workload_seconds(1.5);
  auto* counter = descriptor.add_counters();
  counter->set_name("cycles");
  counter->set_available(true);
  counter->set_value(100);
  EXPECT_TRUE(*store->PutDescriptor(descriptor, 1));
  EXPECT_FALSE(*store->PutDescriptor(descriptor, 2));
  descriptor.mutable_counters(0)->set_value(101);
  EXPECT_TRUE(*store->PutDescriptor(descriptor, 3));
}

TEST_F(StoreTest, RetentionDeletesOldVersionsButPinnedOnesAndReusesTheirSpace) {
  auto store = OpenStore();
  v1::ModelInfo info;
  info.set_method("baseline");
  v1::ModelSnapshot snapshot;
  // ~1 MiB per version, as a real snapshot is several MiB.
  snapshot.set_method(std::string(1 << 20, 'x'));
  auto pages = [&] { return std::stoll(store->Pragmas("page_count")->front()); };
  int64_t pages_after_10 = 0;
  for (int v = 1; v <= 30; ++v) {
    ASSERT_EQ(*store->AddModel(info, snapshot), static_cast<uint64_t>(v));
    const uint64_t pinned[] = {2};
    ASSERT_TRUE(store->DeleteOldModels(3, pinned).ok());
    if (v == 10) pages_after_10 = pages();
  }
  std::vector<uint64_t> versions;
  auto listed = store->ListModels();
  ASSERT_TRUE(listed.ok());
  for (const v1::ModelInfo& m : *listed) versions.push_back(m.version());
  EXPECT_EQ(versions, (std::vector<uint64_t>{30, 29, 28, 2}));
  EXPECT_EQ(store->GetModel(27).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store->GetModel(27).status().message(), HasSubstr("27"));
  EXPECT_TRUE(store->GetModel(2).ok());
  EXPECT_FALSE(*store->HasModel(1));
  // 20 more versions written (20 MiB), yet the file holds as many pages: freed ones are reused.
  EXPECT_LE(pages(), pages_after_10 + pages_after_10 / 10) << "the file keeps growing";
}

TEST_F(StoreTest, ListModelsPagesNewestFirst) {
  auto store = OpenStore();
  v1::ModelInfo info;
  v1::ModelSnapshot snapshot;
  for (int v = 1; v <= 5; ++v) ASSERT_TRUE(store->AddModel(info, snapshot).ok());
  auto first = store->ListModels(0, 2);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ(first->at(0).version(), 5u);
  EXPECT_EQ(first->at(1).version(), 4u);
  auto next = store->ListModels(4, 2);
  ASSERT_EQ(next->size(), 2u);
  EXPECT_EQ(next->at(0).version(), 3u);
  EXPECT_EQ(store->ListModels(2, 10)->size(), 1u);
}

// The schema as earlier binaries wrote it, verbatim (their kMigrations 0 -> 1, 1 -> 2 and
// 2 -> 3, with the bootstrap of Migrate): a test database of version N is built exactly as
// the version-N binary built it, not from today's schema.
constexpr const char* kHistoricalMigrations[] = {
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
    R"sql(
CREATE INDEX measurements_by_device_arch_latency ON measurements (device_id, arch_index, median_ms);
DROP INDEX measurements_by_device;
)sql",
};

// Writes a database of schema version `version` (1..3) at `path`, then runs `rows` on it
// (the data of that version's shape).
void WriteOldDatabase(const std::string& path, int version, const std::string& rows) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string sql = absl::StrCat(
      "PRAGMA journal_mode = WAL; BEGIN; PRAGMA application_id = ", kMaplexApplicationId,
      "; CREATE TABLE schema_version (version INTEGER NOT NULL); "
      "INSERT INTO schema_version VALUES (0);");
  for (int v = 0; v < version; ++v) absl::StrAppend(&sql, kHistoricalMigrations[v]);
  absl::StrAppend(&sql, "UPDATE schema_version SET version = ", version, "; ", rows, " COMMIT;");
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// Rows as the v1..v3 binaries stored them: devices with labels and a descriptor, NB201
// measurements by official index (repeats of one architecture included), a model.
constexpr char kOldRows[] = R"sql(
INSERT INTO devices VALUES ('dev1', 'fp1', 'Board 1', 'eigen', 'fp32', 1, 1, 'edge_cpu', x'', 100, NULL);
INSERT INTO devices VALUES ('dev2', 'fp2', 'Board 2', 'eigen', 'fp32', 1, 1, 'mobile', x'', 200, 300);
INSERT INTO device_labels VALUES ('dev1', 'site', 'lab');
INSERT INTO descriptors VALUES ('dev1', 400, x'0a0464657631');
INSERT INTO measurements VALUES ('m1', 'dev1', 0, 2.5, 2.75, 0.1, 10, x'0a0474657374', 1000, 1001);
INSERT INTO measurements VALUES ('m2', 'dev1', 15624, 3.5, 3.75, 0.2, 20, x'', 2000, 2001);
INSERT INTO measurements VALUES ('m3', 'dev1', 0, 4.5, 4.75, 0.3, 30, x'', 3000, 3001);
INSERT INTO measurements VALUES ('m4', 'dev2', 7, 1.25, 1.5, 0.0, 5, x'', 4000, 4001);
INSERT INTO models VALUES (1, 'maplex', 500, x'', x'');
)sql";

// Every column of every measurement row, as text, by id: what a migration must keep.
std::vector<std::string> MeasurementRows(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT measurement_id, device_id, space, arch, median_ms, p90_ms, "
                               "stddev_ms, repeats, hex(protocol), measured_at_ms, received_at_ms "
                               "FROM measurements ORDER BY measurement_id",
                               -1, &s, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  std::vector<std::string> rows;
  while (sqlite3_step(s) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(s); ++c) {
      absl::StrAppend(&row, c ? "|" : "", reinterpret_cast<const char*>(sqlite3_column_text(s, c)));
    }
    rows.push_back(row);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

std::string Cell(int32_t index) {
  return core::Nb201Space::FormatCell(core::Nb201Space::Get().CellAt(index));
}

// A real v3 database (the v3 schema as the v3 binary wrote it, with rows) opens: every
// row keeps its id, device and values, NB201 indices become cell strings, devices,
// labels, descriptors and models are untouched; opened again it is left as it is.
TEST_F(StoreTest, MigratesARealVersion3Database) {
  WriteOldDatabase(path_, 3, kOldRows);
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->opened_schema_version(), 3);
    EXPECT_EQ(*store->MeasurementCount(), 4);
    auto dev1 = store->GetDevice("dev1");
    ASSERT_TRUE(dev1.ok()) << dev1.status();
    EXPECT_EQ(dev1->hardware_name(), "Board 1");
    EXPECT_EQ(dev1->registered_at_unix_ms(), 100);
    EXPECT_EQ(dev1->labels().at("site"), "lab");
    EXPECT_EQ(dev1->measurement_count(), 2);  // two architectures, one measured twice
    EXPECT_EQ(dev1->measurement_count_by_space().at("nb201"), 2);
    EXPECT_EQ(dev1->measurement_count_by_space().count("fbnet"), 0u);
    EXPECT_TRUE(store->GetDevice("dev2")->retired());
    EXPECT_EQ(Nb201Latencies(*store, "dev1"),
              (std::vector<std::pair<int32_t, double>>{{0, 3.5}, {15624, 3.5}}));
    EXPECT_EQ(Nb201Latencies(*store, "dev2"), (std::vector<std::pair<int32_t, double>>{{7, 1.25}}));
    EXPECT_EQ(store->GetModelInfo(1).status().code(), absl::StatusCode::kOk);
    // A replay of a migrated row is recognised as the same measurement.
    auto replay = store->AddMeasurements({[] {
      StoredMeasurement m = M("m2", "dev1", 15624, 3.5);
      m.stats.set_p90_ms(3.75);
      m.stats.set_stddev_ms(0.2);
      m.stats.set_repeats(20);
      return m;
    }()});
    ASSERT_TRUE(replay.ok()) << replay.status();
    EXPECT_EQ(replay->already_stored, 1);
  }
  const std::vector<std::string> expected = {
      absl::StrCat("m1|dev1|nb201|", Cell(0), "|2.5|2.75|0.1|10|0A0474657374|1000|1001"),
      absl::StrCat("m2|dev1|nb201|", Cell(15624), "|3.5|3.75|0.2|20||2000|2001"),
      absl::StrCat("m3|dev1|nb201|", Cell(0), "|4.5|4.75|0.3|30||3000|3001"),
      absl::StrCat("m4|dev2|nb201|", Cell(7), "|1.25|1.5|0.0|5||4000|4001"),
  };
  EXPECT_EQ(MeasurementRows(path_), expected);
  // Opened again: already v4, nothing is migrated and nothing changes.
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->opened_schema_version(), Store::kSchemaVersion);
  }
  EXPECT_EQ(MeasurementRows(path_), expected);
}

// Older files migrate through every step: v1 (before tokens and the covering index).
TEST_F(StoreTest, MigratesVersion1ToCurrent) {
  WriteOldDatabase(path_, 1, kOldRows);
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->opened_schema_version(), 1);
  EXPECT_EQ(*store->MeasurementCount(), 4);
  EXPECT_EQ(store->GetDevice("dev1")->measurement_count(), 2);
  EXPECT_TRUE(store->ListTokens()->empty());
  v1::Token token;
  token.set_role(v1::ROLE_CLIENT);
  token.set_name("after migration");
  ASSERT_TRUE(store->AddToken(token, std::string(32, 'h')).ok());
  store.reset();
  store = OpenStore();
  EXPECT_EQ(store->opened_schema_version(), Store::kSchemaVersion);
  ASSERT_EQ(store->ListTokens()->size(), 1u);
}

// A v3 row whose index is no NB201 architecture cannot be migrated: the open fails and
// the file stays a v3 file with its rows.
TEST_F(StoreTest, AMigrationThatFailsLeavesTheVersion3FileAsItWas) {
  WriteOldDatabase(
      path_, 3,
      "INSERT INTO devices VALUES ('d', 'fp', 'B', 'eigen', 'fp32', 1, 1, '', x'', 1, "
      "NULL); INSERT INTO measurements VALUES ('m', 'd', 15625, 1, 1, 0, 1, x'', 1, 1);");
  auto store = Store::Open(path_);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr("15625"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT version, (SELECT arch_index FROM measurements) FROM "
                               "schema_version",
                               -1, &s, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 3);
  EXPECT_EQ(sqlite3_column_int(s, 1), 15625);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(StoreTest, RefusesVersion5) {
  OpenStore().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 5", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("schema version 5"));
}

// The trainer's read of one device in one space is answered from the covering index alone.
TEST_F(StoreTest, TrainingReadsUseTheCoveringIndex) {
  OpenStore().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* plan = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "EXPLAIN QUERY PLAN SELECT arch, median_ms FROM measurements "
                               "WHERE device_id = 'dev1' AND space = 'nb201' AND arch > '' "
                               "ORDER BY arch, median_ms",
                               -1, &plan, nullptr),
            SQLITE_OK);
  std::string details;
  while (sqlite3_step(plan) == SQLITE_ROW) {
    details += reinterpret_cast<const char*>(sqlite3_column_text(plan, 3));
    details += "\n";
  }
  sqlite3_finalize(plan);
  sqlite3_close(db);
  EXPECT_THAT(details, HasSubstr("COVERING INDEX measurements_by_device_space_arch_latency"));
  EXPECT_THAT(details, ::testing::Not(HasSubstr("TEMP B-TREE")));
}

// FBNet architectures are stored by canonical string beside NB201 ones: listed, counted and
// loaded per space, paged, replayed idempotently and replaced per (device, space, arch).
TEST_F(StoreTest, StoresFbnetBesideNb201PerSpace) {
  const core::FbnetSpace& fbnet = core::FbnetSpace::Get();
  const std::vector<core::Architecture> archs = fbnet.Sample(5, 11);
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  std::vector<StoredMeasurement> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(M(absl::StrCat("f", i), "d", archs[i], 10.0 + i));
  batch.push_back(M("f5", "d", archs[0], 12.0));  // a repeat: median of 10 and 12
  ASSERT_TRUE(store->AddMeasurements(batch).ok());
  ASSERT_TRUE(store->AddMeasurements({M("n1", "d", 3, 1.0)}).ok());

  auto device = store->GetDevice("d");
  EXPECT_EQ(device->measurement_count(), 6);
  EXPECT_EQ(device->measurement_count_by_space().at("fbnet"), 5);
  EXPECT_EQ(device->measurement_count_by_space().at("nb201"), 1);
  EXPECT_EQ(store->ListDevices({}, "", 10)->at(0).measurement_count_by_space().at("fbnet"), 5);

  std::vector<std::string> sorted;
  for (const core::Architecture& a : archs) sorted.push_back(a.ToString());
  std::sort(sorted.begin(), sorted.end());
  auto measured = store->MeasuredArchitectures("d", fbnet);
  ASSERT_TRUE(measured.ok()) << measured.status();
  ASSERT_EQ(measured->size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ((*measured)[i].ToString(), sorted[i]);
  EXPECT_EQ(store->MeasuredArchitectures("d", Nb201())->size(), 1u);

  // Pages of 2 by canonical string, continuing after the last string.
  std::vector<std::string> paged;
  std::string after;
  for (int page = 0; page < 3; ++page) {
    auto p = store->DeviceLatencies("d", fbnet, after, 2);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_LE(p->size(), 2u);
    for (const auto& [arch, ms] : *p) {
      paged.push_back(arch.ToString());
      if (arch == archs[0]) {
        EXPECT_EQ(ms, 11.0);
      }
    }
    if (!p->empty()) after = p->back().first.ToString();
  }
  EXPECT_EQ(paged, sorted);

  auto training = store->LoadTrainingData(fbnet);
  ASSERT_EQ(training->size(), 1u);
  EXPECT_EQ(training->at(0).latency_ms.size(), 5u);
  EXPECT_EQ(training->at(0).latency_ms[0].first.space(), &fbnet);
  EXPECT_EQ(store->LoadTrainingData(Nb201())->at(0).latency_ms.size(), 1u);

  // Replays: identical is a no-op; another architecture under the same id is refused,
  // naming both, and nothing of its batch is stored.
  auto replay = store->AddMeasurements({M("f1", "d", archs[1], 11.0)});
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->already_stored, 1);
  auto changed =
      store->AddMeasurements({M("new", "d", archs[3], 1.0), M("f1", "d", archs[2], 11.0)});
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(changed.status().message(), HasSubstr(archs[1].ToString()));
  EXPECT_THAT(changed.status().message(), HasSubstr(archs[2].ToString()));
  EXPECT_EQ(*store->MeasurementCount(), 7);

  // Replacing (d, fbnet, archs[0]) deletes both of its rows only.
  auto replaced = store->AddMeasurements({M("r0", "d", archs[0], 20.0)}, /*replace=*/true);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->replaced, 2);
  EXPECT_EQ(*store->MeasurementCount(), 6);
}

TEST_F(StoreTest, TokensAreAddedListedAndRevoked) {
  auto store = OpenStore();
  v1::Token agent;
  agent.set_role(v1::ROLE_AGENT);
  agent.set_device_id("dev1");
  agent.set_name("bench 3");
  absl::StatusOr<StoredToken> a = store->AddToken(agent, std::string(32, 'a'));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_GT(a->token.id(), 0);
  EXPECT_GT(a->token.created_at_unix_ms(), 0);
  // The hash is unique: the same secret cannot name two tokens.
  EXPECT_EQ(store->AddToken(agent, std::string(32, 'a')).status().code(),
            absl::StatusCode::kAlreadyExists);

  absl::StatusOr<StoredToken> revoked = store->RevokeToken(a->token.id());
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->token.revoked());
  EXPECT_EQ(revoked->secret_sha256, std::string(32, 'a'));
  EXPECT_TRUE(store->RevokeToken(a->token.id()).ok());  // again: a no-op
  EXPECT_EQ(store->RevokeToken(999).status().code(), absl::StatusCode::kNotFound);

  store.reset();
  store = OpenStore();
  absl::StatusOr<std::vector<StoredToken>> all = store->ListTokens();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].token.device_id(), "dev1");
  EXPECT_EQ((*all)[0].token.name(), "bench 3");
  EXPECT_EQ((*all)[0].token.role(), v1::ROLE_AGENT);
  EXPECT_TRUE((*all)[0].token.revoked());
}

// The online backup runs while a writer commits batches: the copy is one consistent
// snapshot (whole batches only), opens as a maplex database, and nothing is overwritten.
TEST_F(StoreTest, BackupWhileWritingIsAConsistentSnapshot) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  constexpr int kBatch = 50;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int b = 0; !stop && b < 300; ++b) {
      std::vector<StoredMeasurement> batch;
      for (int i = 0; i < kBatch; ++i) {
        batch.push_back(M(absl::StrCat("m", b, "_", i), "d", (b * kBatch + i) % 15625, 1.0));
      }
      ASSERT_TRUE(store->AddMeasurements(batch).ok());
    }
  });
  // Wait for some data, then copy while the writer goes on.
  while (*store->MeasurementCount() < 10 * kBatch) std::this_thread::yield();
  const std::string copy_path = (dir_ / "backup.db").string();
  absl::StatusOr<int64_t> bytes = Store::Backup(path_, copy_path);
  stop = true;
  writer.join();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, static_cast<int64_t>(std::filesystem::file_size(copy_path)));
  EXPECT_FALSE(std::filesystem::exists(copy_path + ".partial"));
  {
    absl::StatusOr<std::unique_ptr<Store>> copy = Store::Open(copy_path);
    ASSERT_TRUE(copy.ok()) << copy.status();
    const int64_t copied = *(*copy)->MeasurementCount();
    EXPECT_GE(copied, 10 * kBatch);
    EXPECT_EQ(copied % kBatch, 0) << "the copy holds part of a batch";
    EXPECT_LE(copied, *store->MeasurementCount());
  }
  // Never overwrites, and refuses what is not a maplex database.
  absl::StatusOr<int64_t> again = Store::Backup(path_, copy_path);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("exists"));
  const std::string foreign = (dir_ / "foreign.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE songs (title TEXT)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  absl::StatusOr<int64_t> wrong = Store::Backup(foreign, (dir_ / "b2.db").string());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "b2.db"));
  EXPECT_FALSE(Store::Backup((dir_ / "missing.db").string(), (dir_ / "b3.db").string()).ok());
}

}  // namespace
}  // namespace maplex::server

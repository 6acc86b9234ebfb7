#include "server/store/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

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

  static StoredMeasurement M(const std::string& id, const std::string& device, int arch,
                             double ms) {
    StoredMeasurement m;
    m.id = id;
    m.device_id = device;
    m.arch_index = arch;
    m.stats.set_median_ms(ms);
    m.stats.set_p90_ms(ms * 1.1);
    m.stats.set_repeats(10);
    m.protocol.set_tool("test");
    m.measured_at_unix_ms = 1000;
    return m;
  }

  std::filesystem::path dir_;
  std::string path_;
};

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
  auto data = store->LoadTrainingData();
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data->size(), 1u);
  const DeviceSamples& d = (*data)[0];
  EXPECT_EQ(d.device.measurement_count(), 2);
  ASSERT_EQ(d.latency_ms.size(), 2u);
  EXPECT_EQ(d.latency_ms[0].first, 5);
  EXPECT_DOUBLE_EQ(d.latency_ms[0].second, 3.0);  // median of 2.0 and 4.0
  EXPECT_DOUBLE_EQ(d.latency_ms[1].second, 3.0);
}

TEST_F(StoreTest, DeviceLatenciesCombineRepeatsAsTrainingDataDoes) {
  auto store = OpenStore();
  ASSERT_TRUE(store->RegisterDevice(Request("d", "fp", 1)).ok());
  ASSERT_TRUE(store->RegisterDevice(Request("e", "fp2", 1)).ok());
  ASSERT_TRUE(store->AddMeasurements({M("m1", "d", 9, 2.0), M("m2", "d", 4, 3.0),
                                      M("m3", "d", 9, 4.0), M("m4", "e", 1, 8.0)})
                  .ok());
  auto latencies = store->DeviceLatencies("d");
  ASSERT_TRUE(latencies.ok()) << latencies.status();
  EXPECT_EQ(*latencies, (std::vector<std::pair<int32_t, double>>{{4, 3.0}, {9, 3.0}}));
  EXPECT_EQ(store->LoadTrainingData()->at(0).latency_ms, *latencies);
  EXPECT_EQ(store->DeviceLatencies("nobody").status().code(), absl::StatusCode::kNotFound);
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

}  // namespace
}  // namespace maplex::server

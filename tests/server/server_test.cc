// Integration tests: an in-process maplex server on 127.0.0.1:0, driven over gRPC.
#include "server/server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <thread>

#include "client/data_files.h"
#include "core/arch/nb201_space.h"
#include "core/dataset/latency_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maplex/v1/models.grpc.pb.h"
#include "server/store/store.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::ConnectTo;
using ::maplex::testing::TempDir;
using ::maplex::testing::TestDevice;
using ::maplex::testing::TestMeasurement;
using ::maplex::testing::TestServerOptions;
using ::testing::HasSubstr;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

// The bundled data, parsed once for the whole test binary.
const std::vector<core::DeviceData>& BundledData() {
  static const auto* data = [] {
    auto table = client::LoadLatencyData("data/nb201_latency.csv.gz", "data/nb201_devices.csv");
    EXPECT_TRUE(table.ok()) << table.status();
    return new std::vector<core::DeviceData>(*std::move(table));
  }();
  return *data;
}

// Registers `d` and streams all its samples (or the first `limit`).
void Upload(client::MaplexClient& client, const core::DeviceData& d, size_t limit = SIZE_MAX) {
  v1::RegisterDeviceRequest reg = TestDevice(d.device);
  reg.set_hardware_fingerprint("test:" + d.hardware.substr(0, 20));
  for (char& c : *reg.mutable_hardware_fingerprint()) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != ':') c = '-';
  }
  reg.mutable_config()->set_batch_size(d.descriptor.spec.batch_size);
  ASSERT_TRUE(client.RegisterDevice(reg).ok());
  std::vector<v1::Measurement> ms;
  for (size_t i = 0; i < std::min(limit, d.samples.size()); ++i) {
    const core::LatencySample& s = d.samples[i];
    ms.push_back(TestMeasurement(d.device + ":" + std::to_string(s.arch_index), d.device,
                                 s.arch_index, s.latency_ms));
  }
  auto ack = client.SendMeasurements(ms, 5000);
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_EQ(ack->committed_ids_size(), static_cast<int>(ms.size()));
}

const core::DeviceData& Device(const std::string& name) {
  for (const auto& d : BundledData()) {
    if (d.device == name) return d;
  }
  ADD_FAILURE() << "no device " << name;
  return BundledData()[0];
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer() {
    auto server = MaplexServer::Start(TestServerOptions(dir_.File("maplex.db")));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_.emplace(ConnectTo(*server_));
  }
  void SetUp() override { StartServer(); }

  // Three CPUs fully measured plus a new device with 10 samples.
  void LoadSmallFleet() {
    for (const char* name : {"silver_4114", "silver_4210r", "pixel3"})
      Upload(*client_, Device(name));
    Upload(*client_, Device("gold_6240"), 10);
  }

  TempDir dir_;
  std::unique_ptr<MaplexServer> server_;
  std::optional<client::MaplexClient> client_;
};

// maplex import's path: every device's measurements through one stream, a batch never
// spanning two devices, each device's counts and ids on their own.
TEST_F(ServerTest, GroupsInOneStreamAreCountedEachOnItsOwn) {
  for (const char* id : {"a", "b", "c", "d"})
    ASSERT_TRUE(client_->RegisterDevice(TestDevice(id)).ok());
  ASSERT_TRUE(client_
                  ->SendMeasurements(
                      {TestMeasurement("b0", "b", 0, 1.0), TestMeasurement("b1", "b", 1, 2.0)}, 10)
                  .ok());
  const auto rows = [](const std::string& device, int n) {
    std::vector<v1::Measurement> ms;
    for (int i = 0; i < n; ++i) {
      ms.push_back(TestMeasurement(device + std::to_string(i), device, i, 1.0 + i));
    }
    return ms;
  };
  std::vector<std::vector<v1::Measurement>> groups = {rows("a", 7), rows("b", 5), {}, rows("c", 3)};
  // Batches of 4: a spanning batch would be a's last 3 rows with b's first, and its ack
  // would count b's replays or new rows as a's.
  absl::StatusOr<std::vector<v1::MeasurementAck>> acks =
      client_->SendMeasurementGroups(std::move(groups), 4);
  ASSERT_TRUE(acks.ok()) << acks.status();
  ASSERT_EQ(acks->size(), 4u);
  EXPECT_EQ((*acks)[0].inserted(), 7);
  EXPECT_EQ((*acks)[0].already_stored(), 0);
  EXPECT_EQ((*acks)[1].inserted(), 3);
  EXPECT_EQ((*acks)[1].already_stored(), 2);
  EXPECT_EQ((*acks)[2].inserted() + (*acks)[2].already_stored(), 0);
  EXPECT_EQ((*acks)[3].inserted(), 3);
  EXPECT_THAT((*acks)[3].committed_ids(), ::testing::ElementsAre("c0", "c1", "c2"));
  EXPECT_EQ((*acks)[1].committed_ids_size(), 5);
  v1::ListDevicesRequest all;
  absl::StatusOr<std::vector<v1::Device>> devices = client_->ListDevices(all);
  ASSERT_TRUE(devices.ok()) << devices.status();
  std::map<std::string, int64_t> count;
  for (const v1::Device& d : *devices) count[d.id()] = d.measurement_count();
  EXPECT_EQ(count["a"], 7);
  EXPECT_EQ(count["b"], 5);
  EXPECT_EQ(count["c"], 3);
  EXPECT_EQ(count["d"], 0);
}

TEST_F(ServerTest, HealthTurnsServingWhenTheFirstModelIsLoaded) {
  EXPECT_EQ(*client_->Health(""), HealthStatus::NOT_SERVING);
  EXPECT_EQ(*client_->Health("maplex.v1.Predictor"), HealthStatus::NOT_SERVING);
  EXPECT_EQ(*client_->Health("maplex.v1.DeviceRegistry"), HealthStatus::SERVING);
  EXPECT_EQ(*client_->Health("maplex.v1.Ingest"), HealthStatus::SERVING);
  LoadSmallFleet();
  ASSERT_TRUE(client_->Retrain().ok());
  for (int i = 0; i < 100 && *client_->Health("") != HealthStatus::SERVING; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(*client_->Health(""), HealthStatus::SERVING);
  EXPECT_EQ(*client_->Health("maplex.v1.Predictor"), HealthStatus::SERVING);
}

TEST_F(ServerTest, AcksNameCommittedRowsAndRowsSurviveReopen) {
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
  std::vector<v1::Measurement> ms;
  for (int i = 0; i < 25; ++i)
    ms.push_back(TestMeasurement("m" + std::to_string(i), "board", i, 1.0 + i));
  std::vector<v1::MeasurementAck> acks;
  auto total =
      client_->SendMeasurements(ms, 10, [&](const v1::MeasurementAck& a) { acks.push_back(a); });
  ASSERT_TRUE(total.ok()) << total.status();
  ASSERT_EQ(acks.size(), 3u);  // 10 + 10 + 5
  EXPECT_EQ(acks[0].committed_ids(0), "m0");
  EXPECT_EQ(acks[2].committed_ids_size(), 5);
  EXPECT_EQ(total->inserted(), 25);

  // A replay is acknowledged again but stores nothing new.
  auto replay = client_->SendMeasurements(ms, 25);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->inserted(), 0);
  EXPECT_EQ(replay->already_stored(), 25);

  server_->Shutdown();
  server_.reset();
  auto store = Store::Open(dir_.File("maplex.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->MeasurementCount(), 25);
  auto data = (*store)->LoadTrainingData(core::Nb201Space::Get());
  ASSERT_EQ(data->size(), 1u);
  EXPECT_DOUBLE_EQ(ToDeviceData(*data)[0].samples[24].latency_ms, 25.0);
}

TEST_F(ServerTest, ListMeasurementsReturnsADevicesLatenciesByArchitecture) {
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
  ASSERT_TRUE(
      client_
          ->SendMeasurements(
              {TestMeasurement("a", "board", 30, 3.0), TestMeasurement("b", "board", 10, 1.5)}, 10)
          .ok());
  auto latencies = client_->ListMeasurements("board");
  ASSERT_TRUE(latencies.ok()) << latencies.status();
  ASSERT_EQ(latencies->size(), 2u);
  EXPECT_EQ((*latencies)[0].arch_index(), 10);
  EXPECT_DOUBLE_EQ((*latencies)[0].latency_ms(), 1.5);
  EXPECT_EQ((*latencies)[1].arch_index(), 30);
  EXPECT_EQ(client_->ListMeasurements("nobody").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->ListMeasurements("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, ARejectedBatchEndsTheStreamAndStoresNothingOfIt) {
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
  std::vector<v1::Measurement> ms;
  for (int i = 0; i < 4; ++i)
    ms.push_back(TestMeasurement("m" + std::to_string(i), "board", i, 2.0));
  ms[3].mutable_stats()->set_median_ms(-1);  // in the second batch of 2
  int acked = 0;
  auto r = client_->SendMeasurements(
      ms, 2, [&](const v1::MeasurementAck& a) { acked += a.committed_ids_size(); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("measurements[1].stats.median_ms"));
  EXPECT_EQ(acked, 2);
  EXPECT_EQ(client_->GetDevice("board")->measurement_count(), 2);
}

TEST_F(ServerTest, PredictsEveryCellOfAnImportedDeviceWithTheModelVersion) {
  LoadSmallFleet();
  auto model = client_->Retrain();
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<v1::Architecture> all;
  for (int i = 0; i < core::kNb201CellCount; ++i) all.push_back(client::Nb201Index(i));
  for (const char* device : {"silver_4114", "gold_6240"}) {
    auto r = client_->Predict(device, all);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->model_version(), model->version());
    EXPECT_EQ(r->method(), model->method());
    ASSERT_EQ(r->predictions_size(), core::kNb201CellCount);
    for (int i = 0; i < r->predictions_size(); i += 997) {
      const v1::Prediction& p = r->predictions(i);
      EXPECT_EQ(p.arch_index(), i);
      EXPECT_GT(p.latency_ms(), 0);
      EXPECT_LE(p.lower_ms(), p.latency_ms());
      EXPECT_GE(p.upper_ms(), p.latency_ms());
    }
  }
  // A cell string names the same architecture as its index.
  std::string cell = *core::Nb201Space::Get().ArchString(1234);
  auto by_cell = client_->Predict("gold_6240", {client::Nb201Cell(cell)});
  auto by_index = client_->Predict("gold_6240", {client::Nb201Index(1234)});
  ASSERT_TRUE(by_cell.ok() && by_index.ok());
  EXPECT_EQ(by_cell->predictions(0).latency_ms(), by_index->predictions(0).latency_ms());
}

TEST_F(ServerTest, ColumnarAndCompactBatchAnswersHoldTheSamePredictions) {
  LoadSmallFleet();
  ASSERT_TRUE(client_->Retrain().ok());
  std::vector<v1::Architecture> archs;
  for (int i = 0; i < 3000; ++i) archs.push_back(client::Nb201Index((i * 7919) % 15625));
  auto rows = client_->Predict("gold_6240", archs);
  auto columns = client_->PredictColumnar("gold_6240", archs);
  ASSERT_TRUE(rows.ok() && columns.ok()) << columns.status();
  EXPECT_EQ(columns->predictions_size(), 0);
  EXPECT_EQ(columns->model_version(), rows->model_version());
  EXPECT_EQ(columns->method(), rows->method());
  const v1::PredictionColumns& c = columns->columns();
  ASSERT_EQ(c.latency_ms_size(), 3000);
  ASSERT_EQ(c.lower_ms_size(), 3000);
  ASSERT_EQ(c.upper_ms_size(), 3000);
  for (int i = 0; i < 3000; ++i) {
    EXPECT_EQ(c.latency_ms(i), rows->predictions(i).latency_ms()) << i;
    EXPECT_EQ(c.lower_ms(i), rows->predictions(i).lower_ms()) << i;
    EXPECT_EQ(c.upper_ms(i), rows->predictions(i).upper_ms()) << i;
  }
  // A per-message answer leaves the columns empty.
  EXPECT_FALSE(rows->has_columns());
  // The same architectures as a compact batch of op codes.
  v1::ArchitectureBatch batch;
  for (int i = 0; i < 3000; ++i) {
    for (core::Nb201Op op : core::Nb201Space::Get().CellAt((i * 7919) % 15625)) {
      batch.mutable_choices()->push_back(static_cast<char>(op));
    }
  }
  // PredictBatch asks for the interval as factors; NB201's model has none to give, so the
  // server sends the interval columns as for any columnar request.
  ASSERT_TRUE(client_->PredictBatchRequest("gold_6240", batch).interval_factors());
  auto compact = client_->PredictBatch("gold_6240", batch);
  ASSERT_TRUE(compact.ok()) << compact.status();
  EXPECT_EQ(compact->columns().SerializeAsString(), c.SerializeAsString());
}

TEST_F(ServerTest, RestartServesThePersistedModelWithIdenticalPredictions) {
  LoadSmallFleet();
  auto model = client_->Retrain();
  ASSERT_TRUE(model.ok());
  std::vector<v1::Architecture> archs = {client::Nb201Index(0), client::Nb201Index(15624)};
  auto before = client_->Predict("gold_6240", archs);
  ASSERT_TRUE(before.ok());
  server_->Shutdown();
  server_.reset();
  StartServer();
  auto after = client_->Predict("gold_6240", archs);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->model_version(), model->version());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(after->predictions(i).latency_ms(), before->predictions(i).latency_ms());
  }
}

TEST_F(ServerTest, WatchModelsStreamsTheCurrentAndEachNewVersion) {
  LoadSmallFleet();
  auto first = client_->Retrain();
  ASSERT_TRUE(first.ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Models::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchModelsRequest request;
  request.set_include_snapshot(true);
  auto reader = stub->WatchModels(&context, request);
  v1::ModelUpdate update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.info().version(), first->version());
  EXPECT_EQ(update.snapshot().method(), first->method());
  auto second = client_->Retrain();
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.info().version(), second->version());
  context.TryCancel();
}

TEST_F(ServerTest, ModelsListAndShowPerDeviceAccuracy) {
  LoadSmallFleet();
  ASSERT_TRUE(client_->Retrain().ok());
  ASSERT_TRUE(client_->Retrain().ok());
  auto models = client_->ListModels();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_TRUE((*models)[0].serving());
  EXPECT_FALSE((*models)[1].serving());
  auto info = client_->GetModel(0);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->training_devices(), 4);
  EXPECT_EQ(info->training_measurements(), 3 * 15625 + 10);
  ASSERT_EQ(info->device_accuracy_size(), 4);
  for (const auto& a : info->device_accuracy()) {
    EXPECT_EQ(a.reference(), a.device_id() != "gold_6240");
    if (a.reference()) {
      EXPECT_EQ(a.basis(), "not scored: reference device") << a.device_id();
      EXPECT_EQ(a.scored(), 0) << a.device_id();
    } else {
      // 10 measured cells of a real Xeon, each predicted from the other 8 (5 folds).
      EXPECT_EQ(a.basis(), "cross-validated");
      EXPECT_EQ(a.folds(), 5);
      EXPECT_EQ(a.scored(), 10);
      EXPECT_GT(a.spearman(), 0.5);
      EXPECT_LT(a.spearman(), 1);
    }
  }
  EXPECT_EQ(client_->GetModel(99).status().code(), absl::StatusCode::kNotFound);
}

// A request naming a version the server keeps is answered by that version, also after
// newer ones were trained (the CLI's chunked predict pins the first chunk's version);
// once retention deleted it, NOT_FOUND names it.
TEST_F(ServerTest, APinnedRequestIsAnsweredByItsKeptVersionUntilRetentionDeletesIt) {
  server_->Shutdown();
  server_.reset();
  ServerOptions options = TestServerOptions(dir_.File("maplex.db"));
  options.trainer.keep_model_versions = 2;
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  client_.emplace(ConnectTo(*server_));

  LoadSmallFleet();
  auto first = client_->Retrain();
  ASSERT_TRUE(first.ok()) << first.status();
  // Cells none of the uploads measures (they cover the first 200 samples).
  std::vector<v1::Architecture> archs = {client::Nb201Index(9000), client::Nb201Index(12345)};
  auto by_first = client_->Predict("gold_6240", archs);
  ASSERT_TRUE(by_first.ok());
  // More samples of the new device: the next version predicts it differently.
  const core::DeviceData& gold = Device("gold_6240");
  std::vector<v1::Measurement> more;
  for (size_t i = 10; i < 200; ++i) {
    more.push_back(TestMeasurement("gold_6240:" + std::to_string(gold.samples[i].arch_index),
                                   "gold_6240", gold.samples[i].arch_index,
                                   gold.samples[i].latency_ms));
  }
  ASSERT_TRUE(client_->SendMeasurements(more, 5000).ok());
  auto second = client_->Retrain();
  ASSERT_TRUE(second.ok());
  auto by_second = client_->Predict("gold_6240", archs);
  ASSERT_TRUE(by_second.ok());
  ASSERT_NE(by_second->predictions(0).latency_ms(), by_first->predictions(0).latency_ms());

  auto pinned = client_->Predict("gold_6240", archs, first->version());
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->model_version(), first->version());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(pinned->predictions(i).latency_ms(), by_first->predictions(i).latency_ms());
  }
  // ListModels pages (one version per page here) and the client follows them.
  auto listed = client_->ListModels(/*page_size=*/1);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].version(), second->version());
  EXPECT_EQ((*listed)[1].version(), first->version());

  ASSERT_TRUE(client_->Retrain().ok());  // keeps the newest two: the first goes
  auto gone = client_->Predict("gold_6240", archs, first->version());
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gone.status().message()),
              HasSubstr("version " + std::to_string(first->version()) + " is not kept"));
  EXPECT_EQ(client_->ListModels()->size(), 2u);
}

TEST_F(ServerTest, AReplayWithOtherContentIsAlreadyExistsAndImportReplaceCorrectsIt) {
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
  ASSERT_TRUE(client_->SendMeasurements({TestMeasurement("m1", "board", 5, 2.0)}, 10).ok());
  auto same = client_->SendMeasurements({TestMeasurement("m1", "board", 5, 2.0)}, 10);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->already_stored(), 1);
  auto changed = client_->SendMeasurements({TestMeasurement("m1", "board", 5, 2.5)}, 10);
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(changed.status().message()), HasSubstr("\"m1\""));
  // The operator's replacing import takes the place of the stored value.
  auto replaced =
      client_->SendMeasurements({TestMeasurement("m1", "board", 5, 2.5)}, 10, nullptr, true);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->inserted(), 1);
  auto latencies = client_->ListMeasurements("board");
  ASSERT_TRUE(latencies.ok());
  ASSERT_EQ(latencies->size(), 1u);
  EXPECT_EQ((*latencies)[0].latency_ms(), 2.5);
}

TEST_F(ServerTest, RetiredDeviceGetsNoPredictionsAndNoMeasurements) {
  LoadSmallFleet();
  ASSERT_TRUE(client_->Retrain().ok());
  ASSERT_TRUE(client_->Predict("pixel3", {client::Nb201Index(5)}).ok());
  ASSERT_TRUE(client_->RetireDevice("pixel3").ok());
  auto p = client_->Predict("pixel3", {client::Nb201Index(5)});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("retired"));
  auto m = client_->SendMeasurements({TestMeasurement("late", "pixel3", 1, 3.0)}, 1);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  v1::ListDevicesRequest list;
  EXPECT_EQ(client_->ListDevices(list)->size(), 3u);
  list.set_include_retired(true);
  EXPECT_EQ(client_->ListDevices(list)->size(), 4u);
}

// Registering known hardware and configuration again returns the device (idempotent);
// asking for another id for it is refused naming both ids, not silently mapped.
TEST_F(ServerTest, RegisteringKnownHardwareUnderAnotherIdIsRefusedNamingBothIds) {
  v1::RegisterDeviceRequest first = TestDevice("rack-a");
  ASSERT_TRUE(client_->RegisterDevice(first).ok());
  auto again = client_->RegisterDevice(first);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created());
  v1::RegisterDeviceRequest derived = first;
  derived.clear_id();  // no id asked for: the existing device is the answer
  ASSERT_TRUE(client_->RegisterDevice(derived).ok());
  EXPECT_EQ(client_->RegisterDevice(derived)->device().id(), "rack-a");

  v1::RegisterDeviceRequest twin = first;
  twin.set_id("rack-b");
  auto refused = client_->RegisterDevice(twin);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("\"rack-b\""));
  EXPECT_THAT(refused.status().message(), HasSubstr("\"rack-a\""));
  EXPECT_EQ(client_->GetDevice("rack-b").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServerTest, ListDevicesPagesAndFilters) {
  for (int i = 0; i < 7; ++i) {
    auto r = TestDevice("dev" + std::to_string(i));
    if (i < 3) r.mutable_spec()->set_category("mobile");
    ASSERT_TRUE(client_->RegisterDevice(r).ok());
  }
  v1::ListDevicesRequest request;
  request.set_page_size(3);
  EXPECT_EQ(client_->ListDevices(request)->size(), 7u);  // the client follows the pages
  request.set_category("mobile");
  EXPECT_EQ(client_->ListDevices(request)->size(), 3u);
}

TEST_F(ServerTest, PredictBeforeAnyModelIsUnavailable) {
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
  auto r = client_->Predict("board", {client::Nb201Index(1)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ServerTest, ADeviceNewerThanTheModelIsExplained) {
  LoadSmallFleet();
  ASSERT_TRUE(client_->Retrain().ok());
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("newcomer")).ok());
  auto r = client_->Predict("newcomer", {client::Nb201Index(1)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("newcomer"));
  auto unknown = client_->Predict("nobody", {client::Nb201Index(1)});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ServerTest, NextTasksPlansForTheModelAndSkipsWhatIsMeasured) {
  ASSERT_TRUE(client_->RegisterDevice(TestDevice("newbie")).ok());
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Ingest::NewStub(channel);
  auto ask = [&](int count) {
    grpc::ClientContext context;
    v1::NextTasksRequest request;
    request.set_device_id("newbie");
    request.set_count(count);
    v1::NextTasksResponse response;
    EXPECT_TRUE(stub->NextTasks(&context, request, &response).ok());
    return response;
  };
  // No reference device yet: the fixed diverse set.
  v1::NextTasksResponse first = ask(5);
  EXPECT_EQ(first.strategy(), "diverse-compute");
  ASSERT_EQ(first.archs_size(), 5);

  LoadSmallFleet();
  ASSERT_TRUE(client_->Retrain().ok());
  v1::NextTasksResponse planned = ask(10);
  EXPECT_EQ(planned.strategy(), "d-optimal");
  ASSERT_EQ(planned.archs_size(), 10);
  // Measure the first two; they are not proposed again.
  ASSERT_TRUE(
      client_
          ->SendMeasurements({TestMeasurement("n0", "newbie", planned.archs(0).index(), 3.0),
                              TestMeasurement("n1", "newbie", planned.archs(1).index(), 4.0)},
                             2)
          .ok());
  v1::NextTasksResponse after = ask(10);
  for (const auto& a : after.archs()) {
    EXPECT_NE(a.index(), planned.archs(0).index());
    EXPECT_NE(a.index(), planned.archs(1).index());
  }
  grpc::ClientContext context;
  v1::NextTasksRequest bad;
  bad.set_device_id("newbie");
  bad.set_count(0);
  v1::NextTasksResponse ignored;
  EXPECT_EQ(stub->NextTasks(&context, bad, &ignored).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace maplex::server

// Every RPC refuses bad input with the right code and a message naming the field, and
// stores nothing of a refused request (DESIGN.md, "Bad input").
#include <cmath>
#include <limits>

#include <grpcpp/grpcpp.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::ConnectTo;
using ::maplex::testing::TempDir;
using ::maplex::testing::TestDevice;
using ::maplex::testing::TestMeasurement;
using ::maplex::testing::TestServerOptions;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MaplexServer::Start(TestServerOptions(dir_.File("maplex.db")));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_.emplace(ConnectTo(*server_));
    // A reference device measured on every cell, and "board" with 20 measurements.
    ASSERT_TRUE(client_->RegisterDevice(TestDevice("ref")).ok());
    std::vector<v1::Measurement> ref;
    for (int i = 0; i < 15625; ++i) {
      ref.push_back(TestMeasurement("ref" + std::to_string(i), "ref", i, 1.0 + (i % 101) * 0.05));
    }
    ASSERT_TRUE(client_->SendMeasurements(ref, 5000).ok());
    ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
    std::vector<v1::Measurement> ms;
    for (int i = 0; i < 20; ++i) {
      ms.push_back(TestMeasurement("seed" + std::to_string(i), "board", i * 700, 1.0 + i));
    }
    ASSERT_TRUE(client_->SendMeasurements(ms, 20).ok());
    ASSERT_TRUE(client_->Retrain().ok());
  }

  // What the store holds, as seen through the API.
  std::string StoreState() {
    v1::ListDevicesRequest all;
    all.set_include_retired(true);
    std::string state;
    absl::StatusOr<std::vector<v1::Device>> devices = client_->ListDevices(all);
    EXPECT_TRUE(devices.ok()) << devices.status();
    for (const auto& d : *devices) {
      state += d.id() + ":" + std::to_string(d.measurement_count()) + ":" +
               std::to_string(d.labels_size()) + (d.retired() ? ":retired;" : ";");
    }
    return state + "models=" + std::to_string(client_->ListModels()->size());
  }

  void ExpectRejected(const absl::Status& status, Code code, const std::string& field) {
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(field));
  }

  TempDir dir_;
  std::unique_ptr<MaplexServer> server_;
  std::optional<client::MaplexClient> client_;
};

TEST_F(BadInputTest, StreamMeasurements) {
  const std::string before = StoreState();
  struct Case {
    const char* name;
    std::function<void(v1::Measurement&)> spoil;
    Code code;
    const char* field;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {
      {"unknown device", [](auto& m) { m.set_device_id("ghost"); }, Code::kNotFound, "ghost"},
      {"bad device id", [](auto& m) { m.set_device_id("a b"); }, Code::kInvalidArgument, "device_id"},
      {"empty id", [](auto& m) { m.set_id(""); }, Code::kInvalidArgument, ".id"},
      {"negative latency", [](auto& m) { m.mutable_stats()->set_median_ms(-3); }, Code::kInvalidArgument, "median_ms"},
      {"zero latency", [](auto& m) { m.mutable_stats()->set_median_ms(0); }, Code::kInvalidArgument, "median_ms"},
      {"NaN latency", [&](auto& m) { m.mutable_stats()->set_median_ms(nan); }, Code::kInvalidArgument, "median_ms"},
      {"infinite latency", [&](auto& m) { m.mutable_stats()->set_median_ms(inf); }, Code::kInvalidArgument, "median_ms"},
      {"absurd latency", [](auto& m) { m.mutable_stats()->set_median_ms(1e12); }, Code::kInvalidArgument, "absurd"},
      {"NaN stddev", [&](auto& m) { m.mutable_stats()->set_stddev_ms(nan); }, Code::kInvalidArgument, "stddev_ms"},
      {"index out of range", [](auto& m) { m.mutable_arch()->set_index(15625); }, Code::kInvalidArgument, "arch.index"},
      {"negative index", [](auto& m) { m.mutable_arch()->set_index(-1); }, Code::kInvalidArgument, "arch.index"},
      {"malformed cell", [](auto& m) { m.mutable_arch()->set_cell("|conv~0|+"); }, Code::kInvalidArgument, "arch.cell"},
      {"unknown space", [](auto& m) { m.mutable_arch()->set_space("fbnet"); }, Code::kInvalidArgument, "arch.space"},
      {"no architecture", [](auto& m) { m.mutable_arch()->Clear(); }, Code::kInvalidArgument, "arch"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // The bad row sits after a good one: the whole batch must be refused.
    v1::Measurement bad = TestMeasurement("bad", "board", 42, 2.0);
    c.spoil(bad);
    auto r = client_->SendMeasurements({TestMeasurement("good", "board", 41, 2.0), bad}, 2);
    ExpectRejected(r.status(), c.code, c.field);
    EXPECT_EQ(StoreState(), before);
  }
  // Duplicate ids within one batch.
  auto dup = client_->SendMeasurements(
      {TestMeasurement("same", "board", 1, 2.0), TestMeasurement("same", "board", 2, 2.0)}, 2);
  ExpectRejected(dup.status(), Code::kInvalidArgument, "appears twice");
  // Oversized batch.
  std::vector<v1::Measurement> huge;
  for (int i = 0; i < 10001; ++i) huge.push_back(TestMeasurement("h" + std::to_string(i), "board", i, 1.0));
  ExpectRejected(client_->SendMeasurements(huge, 10001).status(), Code::kResourceExhausted, "measurements");
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, EmptyBatch) {
  const std::string before = StoreState();
  // SendMeasurements never sends an empty batch; build one by hand.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Ingest::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->StreamMeasurements(&context);
  ASSERT_TRUE(stream->Write(v1::MeasurementBatch()));
  stream->WritesDone();
  v1::MeasurementAck ack;
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("empty"));
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, Predict) {
  const std::string before = StoreState();
  ExpectRejected(client_->Predict("ghost", {client::Nb201Index(1)}).status(), Code::kNotFound, "ghost");
  ExpectRejected(client_->Predict("", {client::Nb201Index(1)}).status(), Code::kInvalidArgument, "device_id");
  ExpectRejected(client_->Predict("board", {}).status(), Code::kInvalidArgument, "archs");
  ExpectRejected(client_->Predict("board", {client::Nb201Index(1), client::Nb201Index(99999)}).status(),
                 Code::kInvalidArgument, "archs[1].index");
  ExpectRejected(client_->Predict("board", {client::Nb201Cell("|nor_conv_3x3~0|")}).status(),
                 Code::kInvalidArgument, "archs[0].cell");
  std::vector<v1::Architecture> too_many(20001, client::Nb201Index(3));
  ExpectRejected(client_->Predict("board", too_many).status(), Code::kResourceExhausted, "archs");
  ExpectRejected(client_->Predict("board", {client::Nb201Index(1)}, 77).status(),
                 Code::kNotFound, "version 77");
  v1::ArchitectureBatch batch;
  batch.set_choices(std::string{0, 1, 2, 3, 4, 5});
  ExpectRejected(client_->PredictBatch("board", batch).status(), Code::kInvalidArgument,
                 "arch_batch.choices");
  batch.set_choices(std::string(6 * 20001, 0));
  ExpectRejected(client_->PredictBatch("board", batch).status(), Code::kResourceExhausted,
                 "arch_batch");
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, RegisterDevice) {
  const std::string before = StoreState();
  struct Case {
    const char* name;
    std::function<void(v1::RegisterDeviceRequest&)> spoil;
    Code code;
    const char* field;
  };
  const Case cases[] = {
      {"no fingerprint", [](auto& r) { r.clear_hardware_fingerprint(); }, Code::kInvalidArgument, "hardware_fingerprint"},
      {"bad id", [](auto& r) { r.set_id("has space"); }, Code::kInvalidArgument, "id"},
      {"long id", [](auto& r) { r.set_id(std::string(200, 'a')); }, Code::kInvalidArgument, "id"},
      {"no name", [](auto& r) { r.clear_hardware_name(); }, Code::kInvalidArgument, "hardware_name"},
      {"batch 0", [](auto& r) { r.mutable_config()->set_batch_size(0); }, Code::kInvalidArgument, "config.batch_size"},
      {"huge batch", [](auto& r) { r.mutable_config()->set_batch_size(1 << 30); }, Code::kInvalidArgument, "config.batch_size"},
      {"negative threads", [](auto& r) { r.mutable_config()->set_threads(-2); }, Code::kInvalidArgument, "config.threads"},
      {"precision", [](auto& r) { r.mutable_config()->set_precision("fp7"); }, Code::kInvalidArgument, "config.precision"},
      {"no runtime", [](auto& r) { r.mutable_config()->clear_runtime(); }, Code::kInvalidArgument, "config.runtime"},
      {"category", [](auto& r) { r.mutable_spec()->set_category("toaster"); }, Code::kInvalidArgument, "spec.category"},
      {"negative clock", [](auto& r) { r.mutable_spec()->set_base_clock_ghz(-1); }, Code::kInvalidArgument, "spec.base_clock_ghz"},
      {"NaN memory", [](auto& r) { r.mutable_spec()->set_memory_gib(std::nan("")); }, Code::kInvalidArgument, "spec.memory_gib"},
      {"bad label key", [](auto& r) { (*r.mutable_labels())["a b"] = "x"; }, Code::kInvalidArgument, "labels"},
      {"id of another config", [](auto& r) { r.set_id("board"); }, Code::kAlreadyExists, "board"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::RegisterDeviceRequest r = TestDevice("fresh");
    c.spoil(r);
    ExpectRejected(client_->RegisterDevice(r).status(), c.code, c.field);
    EXPECT_EQ(StoreState(), before);
  }
}

TEST_F(BadInputTest, RegistryReadsAndUpdates) {
  const std::string before = StoreState();
  ExpectRejected(client_->GetDevice("ghost").status(), Code::kNotFound, "ghost");
  ExpectRejected(client_->GetDevice("").status(), Code::kInvalidArgument, "id");
  ExpectRejected(client_->RetireDevice("ghost").status(), Code::kNotFound, "ghost");
  v1::UpdateDeviceRequest update;
  update.set_id("ghost");
  ExpectRejected(client_->UpdateDevice(update).status(), Code::kNotFound, "ghost");
  update.set_id("board");
  (*update.mutable_set_labels())["bad key"] = "v";
  ExpectRejected(client_->UpdateDevice(update).status(), Code::kInvalidArgument, "set_labels");
  v1::ListDevicesRequest list;
  list.set_page_size(5000);
  ExpectRejected(client_->ListDevices(list).status(), Code::kInvalidArgument, "page_size");
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, ReportDescriptor) {
  const std::string before = StoreState();
  v1::ReportDescriptorRequest r;
  r.set_device_id("ghost");
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kNotFound, "ghost");
  r.set_device_id("board");
  auto* c = r.add_counters();
  c->set_name("cpu-cycles");
  c->set_available(true);
  c->set_value(-5);
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument, "counters[0].value");
  c->set_available(false);
  c->set_value(12);  // a value for an unavailable counter would be made up
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument, "counters[0].value");
  c->set_value(0);
  *r.add_counters() = *c;
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument, "counters[1].name");
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, Models) {
  ExpectRejected(client_->GetModel(12345).status(), Code::kNotFound, "12345");
}

}  // namespace
}  // namespace maplex::server

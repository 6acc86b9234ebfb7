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
      {"unknown space", [](auto& m) { m.mutable_arch()->set_space("resnet"); }, Code::kInvalidArgument, "arch.space"},
      {"no architecture", [](auto& m) { m.mutable_arch()->Clear(); }, Code::kInvalidArgument, "arch"},
      {"long id", [](auto& m) { m.set_id(std::string(129, 'i')); }, Code::kInvalidArgument, ".id"},
      {"huge cell", [](auto& m) { m.mutable_arch()->set_cell(std::string(5000, '|')); }, Code::kInvalidArgument, "arch.cell: 5000 bytes"},
      {"huge space", [](auto& m) { m.mutable_arch()->set_space(std::string(5000, 's')); }, Code::kInvalidArgument, "arch.space: 5000 bytes"},
      {"huge tool", [](auto& m) { m.mutable_protocol()->set_tool(std::string(5000, 't')); }, Code::kInvalidArgument, "protocol.tool: 5000 bytes"},
      {"huge notes", [](auto& m) { m.mutable_protocol()->set_notes(std::string(5000, 'n')); }, Code::kInvalidArgument, "protocol.notes: 5000 bytes"},
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

// Sends one hand-made batch (SendMeasurements never sends an empty one, nor a spool depth)
// and returns the stream's status.
grpc::Status SendRawBatch(const MaplexServer& server, const v1::MeasurementBatch& batch) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Ingest::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->StreamMeasurements(&context);
  EXPECT_TRUE(stream->Write(batch));
  stream->WritesDone();
  v1::MeasurementAck ack;
  EXPECT_FALSE(stream->Read(&ack));
  return stream->Finish();
}

TEST_F(BadInputTest, EmptyBatch) {
  const std::string before = StoreState();
  grpc::Status s = SendRawBatch(*server_, v1::MeasurementBatch());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("empty"));
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, NegativeSpoolDepth) {
  const std::string before = StoreState();
  v1::MeasurementBatch batch;
  *batch.add_measurements() = TestMeasurement("fine", "board", 5, 2.0);
  batch.set_spool_depth(-4);
  grpc::Status s = SendRawBatch(*server_, batch);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("spool_depth: -4"));
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
  v1::Architecture huge_cell = client::Nb201Cell(std::string(100000, '|'));
  ExpectRejected(client_->Predict("board", {client::Nb201Index(1), huge_cell}).status(),
                 Code::kInvalidArgument, "archs[1].cell: 100000 bytes");
  v1::Architecture huge_space = client::Nb201Index(1);
  huge_space.set_space(std::string(300, 's'));
  ExpectRejected(client_->Predict("board", {huge_space}).status(), Code::kInvalidArgument,
                 "archs[0].space: 300 bytes");
  ExpectRejected(client_->Predict(std::string(129, 'd'), {client::Nb201Index(1)}).status(),
                 Code::kInvalidArgument, "device_id");
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
  // Packed two choices per byte (bits_per_choice = 4; the client sends it as given).
  batch.set_bits_per_choice(4);
  batch.set_choices(std::string{0, 0, 0, 0, 0x50, 0});  // architecture 1, edge 3: op 5
  ExpectRejected(client_->PredictBatch("board", batch).status(), Code::kInvalidArgument,
                 "arch_batch.choices: architecture 1, edge 3: op code 5");
  batch.set_choices(std::string(4, 0));
  ExpectRejected(client_->PredictBatch("board", batch).status(), Code::kInvalidArgument,
                 "arch_batch.choices: 4 bytes are not a whole number");
  batch.set_space("fbnet");
  batch.set_choices(std::string(22, 0) + std::string(1, static_cast<char>(0x90)) +
                    std::string(10, 0));  // three 11-byte architectures
  ExpectRejected(client_->PredictBatch("board", batch).status(), Code::kInvalidArgument,
                 "arch_batch.choices: architecture 2, position 1: code 9 is outside 0..8");
  batch.set_bits_per_choice(2);
  ExpectRejected(client_->PredictBatch("board", batch).status(), Code::kInvalidArgument,
                 "arch_batch.bits_per_choice: 2 is not supported");
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
      {"long fingerprint", [](auto& r) { r.set_hardware_fingerprint(std::string(129, 'f')); }, Code::kInvalidArgument, "hardware_fingerprint"},
      {"huge name", [](auto& r) { r.set_hardware_name(std::string(5000, 'n')); }, Code::kInvalidArgument, "hardware_name: 5000 bytes"},
      {"long runtime", [](auto& r) { r.mutable_config()->set_runtime(std::string(129, 'r')); }, Code::kInvalidArgument, "config.runtime"},
      {"huge isa", [](auto& r) { r.mutable_spec()->set_isa(std::string(5000, 'x')); }, Code::kInvalidArgument, "spec.isa: 5000 bytes"},
      {"huge category", [](auto& r) { r.mutable_spec()->set_category(std::string(5000, 'c')); }, Code::kInvalidArgument, "spec.category"},
      {"long label key", [](auto& r) { (*r.mutable_labels())[std::string(129, 'k')] = "x"; }, Code::kInvalidArgument, "labels key"},
      {"huge label value", [](auto& r) { (*r.mutable_labels())["k"] = std::string(5000, 'v'); }, Code::kInvalidArgument, "labels[k]: 5000 bytes"},
      {"too many labels", [](auto& r) { for (int i = 0; i < 65; ++i) (*r.mutable_labels())["k" + std::to_string(i)] = "v"; }, Code::kResourceExhausted, "labels: 65 labels"},
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
  update.clear_set_labels();
  (*update.mutable_set_labels())["k"] = std::string(5000, 'v');
  ExpectRejected(client_->UpdateDevice(update).status(), Code::kInvalidArgument,
                 "set_labels[k]: 5000 bytes");
  update.clear_set_labels();
  update.add_remove_labels(std::string(129, 'k'));
  ExpectRejected(client_->UpdateDevice(update).status(), Code::kInvalidArgument, "remove_labels");
  update.clear_remove_labels();
  for (int i = 0; i < 65; ++i) update.add_remove_labels("k" + std::to_string(i));
  ExpectRejected(client_->UpdateDevice(update).status(), Code::kResourceExhausted, "set_labels/remove_labels");
  ExpectRejected(client_->GetDevice(std::string(129, 'g')).status(), Code::kInvalidArgument, "id");
  ExpectRejected(client_->RetireDevice(std::string(129, 'g')).status(), Code::kInvalidArgument, "id");
  ExpectRejected(client_->ListMeasurements(std::string(129, 'g')).status(), Code::kInvalidArgument,
                 "device_id");
  v1::ListDevicesRequest list;
  list.set_page_size(5000);
  ExpectRejected(client_->ListDevices(list).status(), Code::kInvalidArgument, "page_size");
  list.set_page_size(0);
  list.set_page_token(std::string(129, 't'));
  ExpectRejected(client_->ListDevices(list).status(), Code::kInvalidArgument, "page_token");
  list.clear_page_token();
  list.set_category(std::string(5000, 'c'));
  ExpectRejected(client_->ListDevices(list).status(), Code::kInvalidArgument, "category: 5000 bytes");
  list.clear_category();
  (*list.mutable_labels())["bad key"] = "v";
  ExpectRejected(client_->ListDevices(list).status(), Code::kInvalidArgument, "labels key");
  list.clear_labels();
  (*list.mutable_labels())["k"] = std::string(5000, 'v');
  ExpectRejected(client_->ListDevices(list).status(), Code::kInvalidArgument, "labels[k]: 5000 bytes");
  list.clear_labels();
  for (int i = 0; i < 65; ++i) (*list.mutable_labels())["k" + std::to_string(i)] = "v";
  ExpectRejected(client_->ListDevices(list).status(), Code::kResourceExhausted, "labels: 65 labels");
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
  r.mutable_counters()->RemoveLast();
  r.mutable_counters(0)->set_unavailable_reason(std::string(5000, 'r'));
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument,
                 "counters[0].unavailable_reason: 5000 bytes");
  r.mutable_counters(0)->clear_unavailable_reason();
  r.mutable_counters(0)->set_name(std::string(129, 'c'));
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument, "counters[0].name");
  r.clear_counters();
  for (int i = 0; i < 257; ++i) r.add_counters()->set_name("c" + std::to_string(i));
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kResourceExhausted, "counters: 257");
  r.clear_counters();
  (*r.mutable_microbenchmarks())[std::string(129, 'm')] = 1;
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument, "microbenchmarks key");
  r.clear_microbenchmarks();
  for (int i = 0; i < 65; ++i) (*r.mutable_microbenchmarks())["m" + std::to_string(i)] = 1;
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kResourceExhausted,
                 "microbenchmarks: 65 entries");
  r.clear_microbenchmarks();
  r.set_device_id(std::string(129, 'd'));
  ExpectRejected(client_->ReportDescriptor(r).status(), Code::kInvalidArgument, "device_id");
  EXPECT_EQ(StoreState(), before);
}

TEST_F(BadInputTest, Tokens) {
  v1::CreateTokenRequest r;
  r.set_role(v1::ROLE_CLIENT);
  r.set_name(std::string(5000, 'n'));
  ExpectRejected(client_->CreateToken(r).status(), Code::kInvalidArgument, "name: 5000 bytes");
  r.set_name("ok");
  r.set_role(v1::ROLE_AGENT);
  r.set_device_id(std::string(129, 'd'));
  ExpectRejected(client_->CreateToken(r).status(), Code::kInvalidArgument, "device_id");
  EXPECT_TRUE(client_->ListTokens()->empty());
}

TEST_F(BadInputTest, Models) {
  ExpectRejected(client_->GetModel(12345).status(), Code::kNotFound, "12345");
}

}  // namespace
}  // namespace maplex::server

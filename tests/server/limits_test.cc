// The limits of server/limits.h and ServerOptions, over gRPC (docs/RELIABILITY.md,
// "Limits"): exceeding one is refused with RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED and a
// message saying which, nothing of the refused request is stored, and the server keeps
// serving everyone else. (Architectures per Predict and measurements per batch are in
// bad_input_test.cc.)
#include <grpcpp/create_channel.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maplex/v1/predictor.grpc.pb.h"
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
using HealthStatus = grpc::health::v1::HealthCheckResponse;

std::vector<v1::Measurement> Batch(const std::string& prefix, const std::string& device, int n) {
  std::vector<v1::Measurement> batch;
  for (int i = 0; i < n; ++i) {
    batch.push_back(TestMeasurement(prefix + std::to_string(i), device, i, 1.0 + i));
  }
  return batch;
}

TEST(LimitsTest, OversizedMessageIsRefusedAndTheServerStaysUp) {
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.max_message_bytes = 1 << 20;
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  client::MaplexClient client = ConnectTo(**server);

  v1::RegisterDeviceRequest huge = TestDevice("huge");
  huge.set_hardware_name(std::string(2 << 20, 'x'));
  absl::Status s = client.RegisterDevice(huge).status();
  EXPECT_EQ(s.code(), Code::kResourceExhausted) << s;

  EXPECT_EQ(*client.Health("maplex.v1.DeviceRegistry"), HealthStatus::SERVING);
  EXPECT_TRUE(client.RegisterDevice(TestDevice("small")).ok());
  EXPECT_EQ(client.GetDevice("huge").status().code(), Code::kNotFound);
}

TEST(LimitsTest, AgentIngestRateIsEnforcedPerToken) {
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.auth = AuthMode::kToken;
  options.bootstrap_token_file = dir.File("operator.token");
  options.limits.max_measurements_per_batch = 20;
  options.limits.agent_measurement_burst = 20;
  options.limits.agent_measurements_per_second = 5;
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string operator_secret;
  std::getline(std::ifstream(options.bootstrap_token_file), operator_secret);
  client::MaplexClient op = ConnectTo(**server, operator_secret);
  std::map<std::string, std::string> agent_secret;
  for (const char* device : {"dev-a", "dev-b"}) {
    ASSERT_TRUE(op.RegisterDevice(TestDevice(device)).ok());
    v1::CreateTokenRequest request;
    request.set_role(v1::ROLE_AGENT);
    request.set_device_id(device);
    agent_secret[device] = op.CreateToken(request)->secret();
  }
  client::MaplexClient a = ConnectTo(**server, agent_secret["dev-a"]);
  client::MaplexClient b = ConnectTo(**server, agent_secret["dev-b"]);

  // A full burst passes; the next batch at once does not, and nothing of it is stored.
  ASSERT_TRUE(a.SendMeasurements(Batch("a", "dev-a", 20), 20).ok());
  absl::Status refused = a.SendMeasurements(Batch("again", "dev-a", 20), 20).status();
  EXPECT_EQ(refused.code(), Code::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("ingest rate of agent token"));
  EXPECT_EQ(op.GetDevice("dev-a")->measurement_count(), 20);

  // Other agents, operators and readers are not held back.
  EXPECT_TRUE(b.SendMeasurements(Batch("b", "dev-b", 20), 20).ok());
  EXPECT_TRUE(op.SendMeasurements(Batch("op", "dev-a", 20), 20).ok());
  EXPECT_TRUE(op.ListDevices(v1::ListDevicesRequest()).ok());

  // The refused agent comes back on a new stream once its bucket refilled (5/s).
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_TRUE(a.SendMeasurements(Batch("later", "dev-a", 2), 2).ok());
}

TEST(LimitsTest, ABurstSmallerThanABatchIsRefusedAtStart) {
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.limits.agent_measurement_burst = options.limits.max_measurements_per_batch - 1;
  EXPECT_EQ(MaplexServer::Start(options).status().code(), Code::kInvalidArgument);
}

TEST(LimitsTest, ClientDeadlinesEndSlowCallsAndTheServerStaysUp) {
  TempDir dir;
  auto server = MaplexServer::Start(TestServerOptions(dir.File("maplex.db")));
  ASSERT_TRUE(server.ok()) << server.status();
  client::MaplexClient patient = ConnectTo(**server);
  ASSERT_TRUE(patient.RegisterDevice(TestDevice("ref")).ok());
  std::vector<v1::Measurement> ref;
  for (int i = 0; i < 15625; ++i)
    ref.push_back(TestMeasurement(std::to_string(i), "ref", i, 1.0 + i % 7));
  ASSERT_TRUE(patient.SendMeasurements(ref, 5000).ok());
  // Training on a whole device takes far longer than a millisecond.
  client::MaplexClient hasty = ConnectTo(**server, "", absl::Milliseconds(1));
  EXPECT_EQ(hasty.Retrain().status().code(), Code::kDeadlineExceeded);
  EXPECT_TRUE(patient.ListDevices(v1::ListDevicesRequest()).ok());
  EXPECT_TRUE(patient.Retrain().ok());
}

TEST(LimitsTest, AStreamTheClientNeverEndsIsEndedByTheServer) {
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.max_call_duration = absl::Seconds(2);
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  // A client without a deadline that opens a stream, sends nothing and waits for an answer.
  std::unique_ptr<v1::Predictor::Stub> stub = v1::Predictor::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  const absl::Time opened = absl::Now();
  auto stream = stub->PredictStream(&context);
  v1::PredictResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const absl::Duration held = absl::Now() - opened;
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // Every call gets at least half of the limit.
  EXPECT_GE(held, absl::Seconds(1)) << held;
  // Other clients are served all along, and after.
  client::MaplexClient client = ConnectTo(**server);
  EXPECT_TRUE(client.RegisterDevice(TestDevice("after")).ok());
}

}  // namespace
}  // namespace maplex::server

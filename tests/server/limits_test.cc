// The limits of server/limits.h and ServerOptions, over gRPC (docs/RELIABILITY.md,
// "Limits"): exceeding one is refused with RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED and a
// message saying which, nothing of the refused request is stored, and the server keeps
// serving everyone else. (Architectures per Predict and measurements per batch are in
// bad_input_test.cc.)
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <fstream>
#include <thread>

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

// Opens `n` PredictStream calls that send nothing (each holds a server thread in its
// handler), waits `hold`, cancels them all and returns their final statuses.
std::vector<grpc::Status> FloodOfHeldStreams(const MaplexServer& server, int n,
                                             absl::Duration hold) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server.port()),
                                     grpc::InsecureChannelCredentials());
  std::unique_ptr<v1::Predictor::Stub> stub = v1::Predictor::NewStub(channel);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<grpc::Status> statuses(n);
  std::vector<std::thread> readers;
  for (int i = 0; i < n; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    readers.emplace_back([&, i, context = contexts.back().get()] {
      auto stream = stub->PredictStream(context);
      v1::PredictResponse response;
      while (stream->Read(&response)) {
      }
      statuses[i] = stream->Finish();
    });
  }
  absl::SleepFor(hold);
  for (auto& context : contexts) context->TryCancel();
  for (std::thread& t : readers) t.join();
  return statuses;
}

int CountCode(const std::vector<grpc::Status>& statuses, grpc::StatusCode code) {
  return static_cast<int>(
      std::count_if(statuses.begin(), statuses.end(),
                    [&](const grpc::Status& s) { return s.error_code() == code; }));
}

// The server-wide thread quota (grpc::ResourceQuota::SetMaxThreads): a flood of calls
// that each hold a thread is served up to the quota and refused beyond it with
// RESOURCE_EXHAUSTED, at once, instead of the server growing a thread per call. The held
// calls go on, and once they end new calls are served.
TEST(LimitsTest, AThreadQuotaRefusesAFloodOfHeldCallsBeyondIt) {
  constexpr int kFlood = 24;
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.max_threads = 8;
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<grpc::Status> statuses = FloodOfHeldStreams(**server, kFlood, absl::Seconds(2));
  const int refused = CountCode(statuses, grpc::StatusCode::RESOURCE_EXHAUSTED);
  const int held = CountCode(statuses, grpc::StatusCode::CANCELLED);
  EXPECT_EQ(refused + held, kFlood);     // nothing else happened to them
  EXPECT_GT(held, 0);                    // the quota serves calls...
  EXPECT_LT(held, options.max_threads);  // ...but never more at once than it has threads
  EXPECT_GE(refused, kFlood - options.max_threads);
  std::printf("threads quota %d: %d of %d held streams served, %d refused\n", options.max_threads,
              held, kFlood, refused);
  // The cancelled calls give their threads back as their handlers return (on a loaded
  // machine, under ThreadSanitizer, that can take a moment): until then a new call may still
  // be refused for the quota, never anything else; then it is served.
  client::MaplexClient client = ConnectTo(**server);
  absl::Status after;
  for (int attempt = 0; attempt < 100; ++attempt) {
    after = client.RegisterDevice(TestDevice("after")).status();
    if (after.code() != Code::kResourceExhausted) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(after.ok()) << after;

  // The same flood against the default quota (256 threads) is held whole: the refusals
  // above come from the quota, not from the flood.
  TempDir other;
  auto roomy = MaplexServer::Start(TestServerOptions(other.File("maplex.db")));
  ASSERT_TRUE(roomy.ok()) << roomy.status();
  statuses = FloodOfHeldStreams(**roomy, kFlood, absl::Seconds(2));
  EXPECT_EQ(CountCode(statuses, grpc::StatusCode::CANCELLED), kFlood);
}

TEST(LimitsTest, AQuotaTooSmallForOneCallIsRefusedAtStart) {
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.max_threads = 1;
  EXPECT_EQ(MaplexServer::Start(options).status().code(), Code::kInvalidArgument);
  options.max_threads = 256;
  options.max_call_memory_bytes = 1 << 20;
  EXPECT_EQ(MaplexServer::Start(options).status().code(), Code::kInvalidArgument);
  // The smallest quota accepted serves calls.
  options.max_threads = 4;
  options.max_call_memory_bytes = 16 << 20;
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  client::MaplexClient client = ConnectTo(**server);
  EXPECT_TRUE(client.RegisterDevice(TestDevice("small")).ok());
  EXPECT_TRUE(client.GetDevice("small").ok());
}

}  // namespace
}  // namespace maplex::server

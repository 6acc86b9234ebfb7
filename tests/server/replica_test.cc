// Integration tests of replica mode: an in-process primary and replica on 127.0.0.1, the
// replica following the primary's Models.WatchModels stream.
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "platform/grpc_channel.h"
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
using HealthStatus = grpc::health::v1::HealthCheckResponse;

// Every architecture, for comparing whole prediction tables.
std::vector<v1::Architecture> AllArchs() {
  std::vector<v1::Architecture> archs;
  for (int32_t a = 0; a < core::kNb201CellCount; ++a) archs.push_back(client::Nb201Index(a));
  return archs;
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartPrimary("127.0.0.1:0");
    ServerOptions options = TestServerOptions("");
    options.replica_of = "127.0.0.1:" + std::to_string(primary_port_);
    options.follower.initial_backoff = absl::Milliseconds(50);
    options.follower.max_backoff = absl::Milliseconds(200);
    auto replica = MaplexServer::Start(options);
    ASSERT_TRUE(replica.ok()) << replica.status();
    replica_ = *std::move(replica);
  }

  void StartPrimary(const std::string& listen) {
    ServerOptions options = TestServerOptions(dir_.File("maplex.db"));
    options.listen_address = listen;
    auto primary = MaplexServer::Start(options);
    ASSERT_TRUE(primary.ok()) << primary.status();
    primary_ = *std::move(primary);
    primary_port_ = primary_->port();
  }

  // A reference device measured on every cell and a target with `target_samples` cells
  // at twice its latency.
  void Upload(int target_samples) {
    client::MaplexClient client = ConnectTo(*primary_);
    ASSERT_TRUE(client.RegisterDevice(TestDevice("ref")).ok());
    ASSERT_TRUE(client.RegisterDevice(TestDevice("target")).ok());
    std::vector<v1::Measurement> ms;
    for (int a = 0; a < core::kNb201CellCount; ++a) {
      double ms_ref = 1.0 + (a % 97) * 0.1 + (a % 13);
      ms.push_back(TestMeasurement("ref:" + std::to_string(a), "ref", a, ms_ref));
      if (a % (core::kNb201CellCount / target_samples) == 0) {
        ms.push_back(TestMeasurement("target:" + std::to_string(a), "target", a, 2 * ms_ref));
      }
    }
    ASSERT_TRUE(client.SendMeasurements(ms, 5000).ok());
  }

  // Waits until the replica serves `version`; false after 20 s.
  bool ReplicaServes(uint64_t version) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      std::shared_ptr<const ServedModel> m =
          replica_->model_slot().WaitNewer(version - 1, absl::Milliseconds(100));
      if (m != nullptr && m->info.version() == version) return true;
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<MaplexServer> primary_;
  int primary_port_ = 0;
  std::unique_ptr<MaplexServer> replica_;
};

TEST_F(ReplicaTest, NotServingUntilTheFirstModelThenPredictsLikeThePrimary) {
  client::MaplexClient replica = ConnectTo(*replica_);
  EXPECT_EQ(*replica.Health(""), HealthStatus::NOT_SERVING);
  EXPECT_EQ(*replica.Health("maplex.v1.Predictor"), HealthStatus::NOT_SERVING);
  EXPECT_EQ(replica.Predict("target", {client::Nb201Index(1)}).status().code(),
            absl::StatusCode::kUnavailable);

  Upload(10);
  client::MaplexClient primary = ConnectTo(*primary_);
  absl::StatusOr<v1::ModelInfo> v1 = primary.Retrain();
  ASSERT_TRUE(v1.ok()) << v1.status();
  ASSERT_TRUE(ReplicaServes(v1->version()));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (*replica.Health("") != HealthStatus::SERVING && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(*replica.Health(""), HealthStatus::SERVING);
  EXPECT_EQ(*replica.Health("maplex.v1.Predictor"), HealthStatus::SERVING);

  for (const char* device : {"ref", "target"}) {
    absl::StatusOr<v1::PredictResponse> from_primary = primary.Predict(device, AllArchs());
    absl::StatusOr<v1::PredictResponse> from_replica = replica.Predict(device, AllArchs());
    ASSERT_TRUE(from_primary.ok()) << from_primary.status();
    ASSERT_TRUE(from_replica.ok()) << from_replica.status();
    EXPECT_EQ(from_replica->model_version(), v1->version());
    EXPECT_EQ(from_replica->SerializeAsString(), from_primary->SerializeAsString()) << device;
  }
  absl::StatusOr<v1::ModelInfo> shown = replica.GetModel(0);
  ASSERT_TRUE(shown.ok()) << shown.status();
  EXPECT_EQ(shown->version(), v1->version());
  EXPECT_EQ(shown->device_accuracy_size(), 2);

  // A second version reaches it too.
  absl::StatusOr<v1::ModelInfo> v2 = primary.Retrain();
  ASSERT_TRUE(v2.ok()) << v2.status();
  ASSERT_TRUE(ReplicaServes(v2->version()));
  EXPECT_EQ(replica.Predict("target", {client::Nb201Index(7)})->model_version(), v2->version());
}

TEST_F(ReplicaTest, HoldsNoDataAndSendsWritesToThePrimary) {
  client::MaplexClient replica = ConnectTo(*replica_);
  absl::StatusOr<v1::ModelInfo> retrain = replica.Retrain();
  EXPECT_EQ(retrain.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(retrain.status().message(), HasSubstr(std::to_string(primary_port_)));
  EXPECT_EQ(replica.RegisterDevice(TestDevice("x")).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(replica.ListDevices({}).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(replica.Health("maplex.v1.Ingest").status().code(), absl::StatusCode::kNotFound);

  Upload(10);
  ASSERT_TRUE(ConnectTo(*primary_).Retrain().ok());
  ASSERT_TRUE(ReplicaServes(1));
  absl::StatusOr<v1::PredictResponse> unknown = replica.Predict("nobody", {client::Nb201Index(1)});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("model version 1 has no device \"nobody\""));
}

TEST_F(ReplicaTest, KeepsServingWhileThePrimaryIsAwayAndFollowsItsRestart) {
  Upload(10);
  ASSERT_TRUE(ConnectTo(*primary_).Retrain().ok());
  ASSERT_TRUE(ReplicaServes(1));

  primary_->Shutdown();
  primary_.reset();
  client::MaplexClient replica = ConnectTo(*replica_);
  absl::SleepFor(absl::Milliseconds(500));  // several reconnect attempts fail meanwhile
  absl::StatusOr<v1::PredictResponse> during = replica.Predict("target", {client::Nb201Index(3)});
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->model_version(), 1u);
  EXPECT_EQ(*replica.Health(""), HealthStatus::SERVING);

  StartPrimary("127.0.0.1:" + std::to_string(primary_port_));
  absl::StatusOr<v1::ModelInfo> v2 = ConnectTo(*primary_).Retrain();
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->version(), 2u);
  ASSERT_TRUE(ReplicaServes(2));
}

// A primary that checks tokens: a replica follows it with a client token, and one without a
// token gets nothing (the primary refuses its WatchModels).
TEST(ReplicaAuthTest, FollowsATokenProtectedPrimaryWithAToken) {
  TempDir dir;
  ServerOptions primary_options = TestServerOptions(dir.File("maplex.db"));
  primary_options.auth = AuthMode::kToken;
  primary_options.bootstrap_token_file = dir.File("operator.token");
  auto primary = MaplexServer::Start(primary_options);
  ASSERT_TRUE(primary.ok()) << primary.status();
  absl::StatusOr<std::string> secret = ResolveToken("", primary_options.bootstrap_token_file);
  ASSERT_TRUE(secret.ok()) << secret.status();

  auto start_replica = [&](const std::string& token) {
    ServerOptions options = TestServerOptions("");
    options.replica_of = "127.0.0.1:" + std::to_string((*primary)->port());
    options.follower.initial_backoff = absl::Milliseconds(50);
    options.follower.max_backoff = absl::Milliseconds(200);
    options.follower.primary.token = token;
    return MaplexServer::Start(options);
  };
  auto with_token = start_replica(*secret);
  auto without_token = start_replica("");
  ASSERT_TRUE(with_token.ok()) << with_token.status();
  ASSERT_TRUE(without_token.ok()) << without_token.status();

  client::MaplexClient op = ConnectTo(**primary, *secret);
  ASSERT_TRUE(op.RegisterDevice(TestDevice("ref")).ok());
  ASSERT_TRUE(op.RegisterDevice(TestDevice("other")).ok());
  std::vector<v1::Measurement> ms;
  for (int a = 0; a < core::kNb201CellCount; ++a) {
    ms.push_back(TestMeasurement("ref:" + std::to_string(a), "ref", a, 1.0 + (a % 97) * 0.1));
    ms.push_back(TestMeasurement("other:" + std::to_string(a), "other", a, 2.0 + (a % 13)));
  }
  ASSERT_TRUE(op.SendMeasurements(ms, 5000).ok());
  absl::StatusOr<v1::ModelInfo> model = op.Retrain();
  ASSERT_TRUE(model.ok()) << model.status();

  std::shared_ptr<const ServedModel> followed =
      (*with_token)->model_slot().WaitNewer(0, absl::Seconds(20));
  ASSERT_NE(followed, nullptr);
  EXPECT_EQ(followed->info.version(), model->version());
  // The token-less replica has had the same time (and many retries): it holds nothing.
  EXPECT_EQ((*without_token)->model_slot().Get(), nullptr);
}

}  // namespace
}  // namespace maplex::server

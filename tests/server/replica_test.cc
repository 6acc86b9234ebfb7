// Integration tests of replica mode: an in-process primary and replica on 127.0.0.1, the
// replica following the primary's Models.WatchModels stream.
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maplex/v1/models.grpc.pb.h"
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

// A snapshot larger than one message reaches the replica in chunks; without chunks (what an
// old follower asks for) the same message limit keeps it out.
TEST_F(ReplicaTest, SnapshotsLargerThanOneMessageArriveInChunks) {
  Upload(10);
  absl::StatusOr<v1::ModelInfo> model = ConnectTo(*primary_).Retrain();
  ASSERT_TRUE(model.ok()) << model.status();
  const size_t snapshot_bytes = primary_->model_slot().Get()->snapshot.ByteSizeLong();
  ASSERT_GT(snapshot_bytes, 8u * 1024);

  auto start_replica = [&](int chunk_bytes) {
    ServerOptions options = TestServerOptions("");
    options.replica_of = "127.0.0.1:" + std::to_string(primary_port_);
    options.follower.initial_backoff = absl::Milliseconds(50);
    options.follower.max_backoff = absl::Milliseconds(200);
    options.follower.max_message_bytes = static_cast<int>(snapshot_bytes / 2);
    options.follower.snapshot_chunk_bytes = chunk_bytes;
    return MaplexServer::Start(options);
  };
  auto chunked = start_replica(static_cast<int>(snapshot_bytes / 5));
  auto whole = start_replica(0);
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  ASSERT_TRUE(whole.ok()) << whole.status();
  std::shared_ptr<const ServedModel> followed =
      (*chunked)->model_slot().WaitNewer(0, absl::Seconds(20));
  ASSERT_NE(followed, nullptr);
  EXPECT_EQ(followed->info.version(), model->version());
  EXPECT_EQ(followed->snapshot.SerializeAsString(),
            primary_->model_slot().Get()->snapshot.SerializeAsString());
  EXPECT_EQ(followed->info.device_accuracy_size(), 2);
  absl::StatusOr<v1::PredictResponse> from_primary =
      ConnectTo(*primary_).Predict("target", AllArchs());
  absl::StatusOr<v1::PredictResponse> from_replica =
      ConnectTo(**chunked).Predict("target", AllArchs());
  ASSERT_TRUE(from_replica.ok()) << from_replica.status();
  EXPECT_EQ(from_replica->SerializeAsString(), from_primary->SerializeAsString());
  // The unchunked follower had the same time and retries: the message limit refused it.
  EXPECT_EQ((*whole)->model_slot().Get(), nullptr);
}

// A watch whose follower could not take the update does not end "OK": the server reports
// the call's end as UNAVAILABLE (seen through its own RPC metrics, which record the status
// the handler returned), so a cut stream is never mistaken for a finished one.
TEST_F(ReplicaTest, AWatchThatCouldNotDeliverEndsWithAnError) {
  Upload(10);
  ASSERT_TRUE(ConnectTo(*primary_).Retrain().ok());
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(1024);  // far below one snapshot
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(primary_port_), grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<v1::Models::Stub> stub = v1::Models::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchModelsRequest request;
  request.set_include_snapshot(true);
  auto reader = stub->WatchModels(&context, request);
  v1::ModelUpdate update;
  EXPECT_FALSE(reader->Read(&update));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // prometheus-cpp writes labels in name order.
  const std::string ended_ok =
      "maplex_rpc_duration_seconds_count{code=\"OK\",method=\"/maplex.v1.Models/WatchModels\"}";
  const std::string ended_unavailable =
      "maplex_rpc_duration_seconds_count{code=\"UNAVAILABLE\","
      "method=\"/maplex.v1.Models/WatchModels\"}";
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (primary_->metrics().Expose().find(ended_unavailable) == std::string::npos &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::string page = primary_->metrics().Expose();
  EXPECT_THAT(page, HasSubstr(ended_unavailable));
  EXPECT_THAT(page, ::testing::Not(HasSubstr(ended_ok)));
}

TEST(SnapshotAssemblerTest, RefusesChunksOutOfOrderOrBeyondTheBound) {
  v1::ModelSnapshot snapshot;
  snapshot.set_method("maple");
  for (int i = 0; i < 200; ++i) snapshot.add_devices()->set_device("device-" + std::to_string(i));
  const std::string bytes = snapshot.SerializeAsString();
  auto chunk = [&](uint64_t version, size_t offset, size_t n) {
    v1::ModelUpdate u;
    u.mutable_info()->set_version(version);
    u.set_snapshot_total_bytes(bytes.size());
    u.set_snapshot_offset(offset);
    u.set_snapshot_chunk(bytes.substr(offset, n));
    return u;
  };
  const size_t half = bytes.size() / 2;
  SnapshotAssembler assembler(1 << 20);
  v1::ModelUpdate first = chunk(3, 0, half), second = chunk(3, half, bytes.size());
  ASSERT_TRUE(assembler.Add(first).ok());
  absl::StatusOr<std::optional<v1::ModelUpdate>> whole = assembler.Add(second);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_TRUE(whole->has_value());
  EXPECT_EQ((*whole)->snapshot().SerializeAsString(), bytes);
  EXPECT_EQ((*whole)->info().version(), 3u);

  v1::ModelUpdate gap = chunk(4, half + 1, bytes.size());
  EXPECT_FALSE(assembler.Add(gap).ok());  // nothing started
  v1::ModelUpdate start = chunk(4, 0, half), other_version = chunk(5, half, bytes.size());
  ASSERT_TRUE(assembler.Add(start).ok());
  EXPECT_FALSE(assembler.Add(other_version).ok());
  SnapshotAssembler small(static_cast<int64_t>(bytes.size()) - 1);
  v1::ModelUpdate too_big = chunk(6, 0, half);
  EXPECT_FALSE(small.Add(too_big).ok());
}

// A replica of a primary that checks tokens checks them too, against the digests of the
// primary's tokens: no token or an unknown one is refused, a client token predicts, a
// token revoked on the primary stops working here, and a replica that lost its primary
// for longer than max_staleness is NOT_SERVING and refuses every token.
class ReplicaTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = TestServerOptions(dir_.File("maplex.db"));
    options.auth = AuthMode::kToken;
    options.bootstrap_token_file = dir_.File("operator.token");
    auto primary = MaplexServer::Start(options);
    ASSERT_TRUE(primary.ok()) << primary.status();
    primary_ = *std::move(primary);
    absl::StatusOr<std::string> secret = ResolveToken("", options.bootstrap_token_file);
    ASSERT_TRUE(secret.ok()) << secret.status();
    operator_secret_ = *secret;
    client::MaplexClient op = ConnectTo(*primary_, operator_secret_);
    replica_token_ = Create(v1::ROLE_REPLICA);
    client_token_ = Create(v1::ROLE_CLIENT);
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

    ServerOptions replica = TestServerOptions("");
    replica.replica_of = "127.0.0.1:" + std::to_string(primary_->port());
    replica.auth = AuthMode::kToken;
    replica.follower.initial_backoff = absl::Milliseconds(50);
    replica.follower.max_backoff = absl::Milliseconds(200);
    replica.follower.max_staleness = kStaleness;
    replica.follower.primary.token = replica_token_.secret();
    auto started = MaplexServer::Start(replica);
    ASSERT_TRUE(started.ok()) << started.status();
    replica_ = *std::move(started);
    ASSERT_NE(replica_->model_slot().WaitNewer(0, absl::Seconds(20)), nullptr);
  }

  v1::CreateTokenResponse Create(v1::Role role) {
    v1::CreateTokenRequest request;
    request.set_role(role);
    absl::StatusOr<v1::CreateTokenResponse> created =
        ConnectTo(*primary_, operator_secret_).CreateToken(request);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : v1::CreateTokenResponse();
  }

  absl::StatusCode PredictOnReplica(const std::string& token) {
    return ConnectTo(*replica_, token, absl::Seconds(10))
        .Predict("ref", {client::Nb201Index(7)})
        .status()
        .code();
  }

  // Polls until `token`'s Predict on the replica answers `code`; false after `within`.
  bool ReplicaAnswers(const std::string& token, absl::StatusCode code, absl::Duration within) {
    absl::Time deadline = absl::Now() + within;
    while (absl::Now() < deadline) {
      if (PredictOnReplica(token) == code) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return PredictOnReplica(token) == code;
  }

  static constexpr absl::Duration kStaleness = absl::Seconds(2);
  TempDir dir_;
  std::unique_ptr<MaplexServer> primary_;
  std::unique_ptr<MaplexServer> replica_;
  std::string operator_secret_;
  v1::CreateTokenResponse replica_token_;
  v1::CreateTokenResponse client_token_;
};

TEST_F(ReplicaTokensTest, ChecksCallersAgainstThePrimarysTokens) {
  // The digests arrive on their own stream: wait until the client token is known.
  ASSERT_TRUE(ReplicaAnswers(client_token_.secret(), absl::StatusCode::kOk, absl::Seconds(10)));
  EXPECT_EQ(PredictOnReplica(""), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(PredictOnReplica("mplx_" + std::string(64, '0')), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(PredictOnReplica(operator_secret_), absl::StatusCode::kOk);
  // A replica token follows; it does not predict.
  EXPECT_EQ(PredictOnReplica(replica_token_.secret()), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ConnectTo(*replica_).GetModel(0).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(ConnectTo(*replica_, client_token_.secret()).GetModel(0).ok());
  // A token created on the primary after the replica started works there too.
  v1::CreateTokenResponse later = Create(v1::ROLE_CLIENT);
  EXPECT_TRUE(ReplicaAnswers(later.secret(), absl::StatusCode::kOk, absl::Seconds(2)));

  // Revoked on the primary: refused on the replica within a second (the primary pushes
  // changes within 100 ms).
  ASSERT_TRUE(ConnectTo(*primary_, operator_secret_).RevokeToken(client_token_.token().id()).ok());
  absl::Time revoked = absl::Now();
  EXPECT_TRUE(
      ReplicaAnswers(client_token_.secret(), absl::StatusCode::kUnauthenticated, absl::Seconds(1)));
  EXPECT_LT(absl::Now() - revoked, absl::Seconds(1));
}

TEST_F(ReplicaTokensTest, ALostPrimaryMakesTheReplicaNotServingAndRefuseTokensUntilItIsBack) {
  ASSERT_TRUE(ReplicaAnswers(client_token_.secret(), absl::StatusCode::kOk, absl::Seconds(10)));
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (*ConnectTo(*replica_).Health("") != HealthStatus::SERVING && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(*ConnectTo(*replica_).Health(""), HealthStatus::SERVING);

  // The heartbeats stop when the primary starts shutting down (its Shutdown may itself take
  // a while, e.g. under ThreadSanitizer); they were due every kStaleness / 4, so the last
  // one came at most that long before `gone`.
  absl::Time gone = absl::Now();
  primary_->Shutdown();
  // Within the bound the replica still serves (checked when the shutdown left time to).
  if (absl::Now() - gone < kStaleness / 2) {
    EXPECT_EQ(PredictOnReplica(client_token_.secret()), absl::StatusCode::kOk);
  }
  EXPECT_TRUE(ReplicaAnswers(client_token_.secret(), absl::StatusCode::kUnavailable,
                             kStaleness + absl::Seconds(2)));
  EXPECT_GE(absl::Now() - gone, kStaleness - kStaleness / 4 - absl::Milliseconds(300));
  deadline = absl::Now() + absl::Seconds(2);
  while (*ConnectTo(*replica_).Health("") != HealthStatus::NOT_SERVING && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(*ConnectTo(*replica_).Health(""), HealthStatus::NOT_SERVING);
  EXPECT_EQ(*ConnectTo(*replica_).Health("maplex.v1.Predictor"), HealthStatus::NOT_SERVING);

  // The primary back on its address (same database, so the same tokens): the replica
  // hears it, serves again and accepts the token again.
  ServerOptions options = TestServerOptions(dir_.File("maplex.db"));
  options.listen_address = "127.0.0.1:" + std::to_string(primary_->port());
  options.auth = AuthMode::kToken;
  primary_.reset();
  auto back = MaplexServer::Start(options);
  ASSERT_TRUE(back.ok()) << back.status();
  primary_ = *std::move(back);
  EXPECT_TRUE(ReplicaAnswers(client_token_.secret(), absl::StatusCode::kOk, absl::Seconds(10)));
  deadline = absl::Now() + absl::Seconds(10);
  while (*ConnectTo(*replica_).Health("") != HealthStatus::SERVING && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(*ConnectTo(*replica_).Health(""), HealthStatus::SERVING);
}

TEST(ReplicaAuthTest, ATokenCheckingReplicaNeedsAReplicaTokenOfThePrimary) {
  ServerOptions options = TestServerOptions("");
  options.replica_of = "127.0.0.1:1";
  options.auth = AuthMode::kToken;
  absl::StatusOr<std::unique_ptr<MaplexServer>> refused = MaplexServer::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--role replica"));
}

}  // namespace
}  // namespace maplex::server

// Roles and authentication over gRPC (docs/RELIABILITY.md, "Roles and authentication"):
// an in-process server with --auth=token, and every RPC called as every kind of caller —
// no token, an unknown token, a revoked token, and an agent, client and operator token —
// each with the code the policy promises.
#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maplex/v1/models.grpc.pb.h"
#include "maplex/v1/predictor.grpc.pb.h"
#include "maplex/v1/tokens.grpc.pb.h"
#include "platform/grpc_channel.h"
#include "server/auth/authorizer.h"
#include "server/server.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::TempDir;
using ::maplex::testing::TestDevice;
using ::maplex::testing::TestMeasurement;
using ::maplex::testing::TestServerOptions;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

// A client of the test server holding one token ("" for none).
struct Session {
  client::MaplexClient client;
  std::shared_ptr<grpc::Channel> channel;  // for the streaming RPCs the client lacks
};

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

absl::Status FromGrpc(const grpc::Status& s) { return client::FromGrpcStatus(s); }

int unique = 0;                // fresh measurement ids across calls
int64_t revoked_token_id = 0;  // set up revoked: revoking it again changes nothing

class AuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ServerOptions options = TestServerOptions(dir_->File("maplex.db"));
    options.auth = AuthMode::kToken;
    options.bootstrap_token_file = dir_->File("operator.token");
    auto server = MaplexServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();

    operator_secret_ = new std::string(ReadFirstLine(options.bootstrap_token_file));
    Session op = Connect(*operator_secret_);
    // A reference device measured everywhere and dev-a with a few samples: enough for a
    // model, so that Predict can succeed. dev-b belongs to no agent; spare is retired.
    ASSERT_TRUE(op.client.RegisterDevice(TestDevice("ref")).ok());
    std::vector<v1::Measurement> ref;
    for (int i = 0; i < 15625; ++i) {
      ref.push_back(TestMeasurement("ref" + std::to_string(i), "ref", i, 1.0 + (i % 101) * 0.05));
    }
    ASSERT_TRUE(op.client.SendMeasurements(ref, 5000).ok());
    for (const char* id : {"dev-a", "dev-b", "spare"}) {
      ASSERT_TRUE(op.client.RegisterDevice(TestDevice(id)).ok());
    }
    std::vector<v1::Measurement> a;
    for (int i = 0; i < 20; ++i)
      a.push_back(TestMeasurement("a" + std::to_string(i), "dev-a", i * 700, 1.0 + i));
    ASSERT_TRUE(op.client.SendMeasurements(a, 20).ok());
    ASSERT_TRUE(op.client.Retrain().ok());

    secrets_ = new std::map<std::string, std::string>();
    (*secrets_)["operator"] = *operator_secret_;
    (*secrets_)["agent"] = Create(op, v1::ROLE_AGENT, "dev-a").secret();
    (*secrets_)["client"] = Create(op, v1::ROLE_CLIENT, "").secret();
    (*secrets_)["replica"] = Create(op, v1::ROLE_REPLICA, "").secret();
    v1::CreateTokenResponse revoked = Create(op, v1::ROLE_OPERATOR, "");
    revoked_token_id = revoked.token().id();
    ASSERT_TRUE(op.client.RevokeToken(revoked_token_id).ok());
    (*secrets_)["revoked"] = revoked.secret();
    (*secrets_)["unknown"] = "mplx_" + std::string(64, '0');
    (*secrets_)["none"] = "";
  }

  static void TearDownTestSuite() {
    delete server_;
    delete secrets_;
    delete operator_secret_;
    delete dir_;
  }

  static Session Connect(const std::string& secret) {
    client::ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(server_->port());
    options.timeout = absl::Seconds(30);
    options.security.token = secret;
    auto channel = OpenChannel(options.address, options.security, grpc::ChannelArguments());
    return Session{*client::MaplexClient::Connect(options), *channel};
  }

  static v1::CreateTokenResponse Create(Session& as, v1::Role role, const std::string& device) {
    v1::CreateTokenRequest request;
    request.set_role(role);
    request.set_device_id(device);
    request.set_name("auth_test");
    absl::StatusOr<v1::CreateTokenResponse> created = as.client.CreateToken(request);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : v1::CreateTokenResponse();
  }

  static TempDir* dir_;
  static MaplexServer* server_;
  static std::string* operator_secret_;
  static std::map<std::string, std::string>* secrets_;
};

TempDir* AuthTest::dir_ = nullptr;
MaplexServer* AuthTest::server_ = nullptr;
std::string* AuthTest::operator_secret_ = nullptr;
std::map<std::string, std::string>* AuthTest::secrets_ = nullptr;

// One call of each RPC, made the way its caller would make it: an agent acts on dev-a.
const std::map<std::string, std::function<absl::Status(Session&)>>& Calls() {
  static const auto* calls = new std::map<std::string, std::function<absl::Status(Session&)>>{
      {"/maplex.v1.DeviceRegistry/RegisterDevice",
       [](Session& s) { return s.client.RegisterDevice(TestDevice("dev-a")).status(); }},
      {"/maplex.v1.DeviceRegistry/GetDevice",
       [](Session& s) { return s.client.GetDevice("dev-a").status(); }},
      {"/maplex.v1.DeviceRegistry/ListDevices",
       [](Session& s) { return s.client.ListDevices(v1::ListDevicesRequest()).status(); }},
      {"/maplex.v1.DeviceRegistry/ListMeasurements",
       [](Session& s) { return s.client.ListMeasurements("dev-a").status(); }},
      {"/maplex.v1.DeviceRegistry/UpdateDevice",
       [](Session& s) {
         v1::UpdateDeviceRequest r;
         r.set_id("dev-a");
         (*r.mutable_set_labels())["site"] = "lab";
         return s.client.UpdateDevice(r).status();
       }},
      {"/maplex.v1.DeviceRegistry/RetireDevice",
       [](Session& s) { return s.client.RetireDevice("spare").status(); }},
      {"/maplex.v1.Ingest/StreamMeasurements",
       [](Session& s) {
         return s.client
             .SendMeasurements({TestMeasurement("u" + std::to_string(++unique), "dev-a", 3, 2.0)},
                               1)
             .status();
       }},
      {"/maplex.v1.Ingest/ReportDescriptor",
       [](Session& s) {
         v1::ReportDescriptorRequest r;
         r.set_device_id("dev-a");
         return s.client.ReportDescriptor(r).status();
       }},
      {"/maplex.v1.Ingest/NextTasks",
       [](Session& s) {
         auto stub = v1::Ingest::NewStub(s.channel);
         grpc::ClientContext context;
         context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
         v1::NextTasksRequest r;
         r.set_device_id("dev-a");
         r.set_count(3);
         v1::NextTasksResponse response;
         return FromGrpc(stub->NextTasks(&context, r, &response));
       }},
      {"/maplex.v1.Predictor/Predict",
       [](Session& s) { return s.client.Predict("ref", {client::Nb201Index(1)}).status(); }},
      {"/maplex.v1.Predictor/PredictStream",
       [](Session& s) {
         auto stub = v1::Predictor::NewStub(s.channel);
         grpc::ClientContext context;
         context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
         auto stream = stub->PredictStream(&context);
         v1::PredictRequest r;
         r.set_device_id("ref");
         r.add_archs()->set_index(1);
         v1::PredictResponse response;
         if (stream->Write(r)) stream->Read(&response);
         stream->WritesDone();
         return FromGrpc(stream->Finish());
       }},
      {"/maplex.v1.Models/ListModels", [](Session& s) { return s.client.ListModels().status(); }},
      {"/maplex.v1.Models/GetModel", [](Session& s) { return s.client.GetModel(0).status(); }},
      {"/maplex.v1.Models/WatchModels",
       [](Session& s) {
         auto stub = v1::Models::NewStub(s.channel);
         grpc::ClientContext context;
         context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
         auto reader = stub->WatchModels(&context, v1::WatchModelsRequest());
         v1::ModelUpdate update;
         // A refused watch ends without a message; an admitted one sends the current model.
         if (reader->Read(&update)) {
           context.TryCancel();
           reader->Finish();
           return absl::OkStatus();
         }
         return FromGrpc(reader->Finish());
       }},
      {"/maplex.v1.Models/Retrain", [](Session& s) { return s.client.Retrain().status(); }},
      {"/maplex.v1.Tokens/WatchTokenDigests",
       [](Session& s) {
         auto stub = v1::Tokens::NewStub(s.channel);
         grpc::ClientContext context;
         context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
         auto reader = stub->WatchTokenDigests(&context, v1::WatchTokenDigestsRequest());
         v1::TokenDigests digests;
         // Admitted: the digests of the unrevoked tokens at once, and no secret among them.
         if (reader->Read(&digests)) {
           context.TryCancel();
           reader->Finish();
           for (const v1::TokenDigest& d : digests.tokens()) {
             if (d.secret_sha256().size() != 32 || d.token().revoked()) {
               return absl::InternalError("not a digest of an active token");
             }
           }
           return digests.tokens_size() >= 4 ? absl::OkStatus()
                                             : absl::InternalError("tokens are missing");
         }
         return FromGrpc(reader->Finish());
       }},
      {"/maplex.v1.Tokens/CreateToken",
       [](Session& s) {
         v1::CreateTokenRequest r;
         r.set_role(v1::ROLE_CLIENT);
         return s.client.CreateToken(r).status();
       }},
      {"/maplex.v1.Tokens/ListTokens", [](Session& s) { return s.client.ListTokens().status(); }},
      {"/maplex.v1.Tokens/RevokeToken",
       [](Session& s) { return s.client.RevokeToken(revoked_token_id).status(); }},
  };
  return *calls;
}

// The promise, RPC by RPC: which of agent / client may call it (operators may call all).
struct Expected {
  bool agent;
  bool client;
  bool replica = false;  // a predictor replica's token
};
const std::map<std::string, Expected>& Promise() {
  static const auto* promise = new std::map<std::string, Expected>{
      {"/maplex.v1.DeviceRegistry/RegisterDevice", {true, false}},
      {"/maplex.v1.DeviceRegistry/GetDevice", {false, true}},
      {"/maplex.v1.DeviceRegistry/ListDevices", {false, true}},
      {"/maplex.v1.DeviceRegistry/ListMeasurements", {false, true}},
      {"/maplex.v1.DeviceRegistry/UpdateDevice", {false, false}},
      {"/maplex.v1.DeviceRegistry/RetireDevice", {false, false}},
      {"/maplex.v1.Ingest/StreamMeasurements", {true, false}},
      {"/maplex.v1.Ingest/ReportDescriptor", {true, false}},
      {"/maplex.v1.Ingest/NextTasks", {true, false}},
      {"/maplex.v1.Predictor/Predict", {false, true}},
      {"/maplex.v1.Predictor/PredictStream", {false, true}},
      {"/maplex.v1.Models/ListModels", {false, true}},
      {"/maplex.v1.Models/GetModel", {false, true}},
      {"/maplex.v1.Models/WatchModels", {false, true, true}},
      {"/maplex.v1.Models/Retrain", {false, false}},
      {"/maplex.v1.Tokens/CreateToken", {false, false}},
      {"/maplex.v1.Tokens/ListTokens", {false, false}},
      {"/maplex.v1.Tokens/RevokeToken", {false, false}},
      {"/maplex.v1.Tokens/WatchTokenDigests", {false, false, true}},
  };
  return *promise;
}

template <typename Map>
std::set<std::string> Keys(const Map& map) {
  std::set<std::string> keys;
  for (const auto& [k, v] : map) keys.insert(k);
  return keys;
}

// Every RPC of every maplex service has a policy, a call here, and a promised outcome.
TEST_F(AuthTest, EveryRpcHasAPolicyAndIsTested) {
  std::set<std::string> rpcs;
  for (const char* name : {"maplex.v1.DeviceRegistry", "maplex.v1.Ingest", "maplex.v1.Predictor",
                           "maplex.v1.Models", "maplex.v1.Tokens"}) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      rpcs.insert("/" + service->full_name() + "/" + service->method(i)->name());
    }
  }
  std::vector<std::string> policy = Authorizer::PolicyMethods();
  EXPECT_EQ(std::set<std::string>(policy.begin(), policy.end()), rpcs);
  EXPECT_EQ(Keys(Calls()), rpcs);
  EXPECT_EQ(Keys(Promise()), rpcs);
}

TEST_F(AuthTest, EachRoleGetsWhatThePolicyPromises) {
  for (const std::string who :
       {"none", "unknown", "revoked", "agent", "client", "replica", "operator"}) {
    Session session = Connect(secrets_->at(who));
    for (const auto& [rpc, call] : Calls()) {
      SCOPED_TRACE(who + " calls " + rpc);
      const Expected& e = Promise().at(rpc);
      absl::Status s = call(session);
      if (who == "none" || who == "unknown" || who == "revoked") {
        EXPECT_EQ(s.code(), Code::kUnauthenticated) << s;
      } else if (who == "operator" || (who == "agent" && e.agent) ||
                 (who == "client" && e.client) || (who == "replica" && e.replica)) {
        EXPECT_TRUE(s.ok()) << s;
      } else {
        EXPECT_EQ(s.code(), Code::kPermissionDenied) << s;
        EXPECT_THAT(std::string(s.message()), HasSubstr("has role " + who));
      }
    }
  }
}

TEST_F(AuthTest, RefusalsSayWhy) {
  EXPECT_THAT(std::string(Connect("").client.ListModels().status().message()),
              HasSubstr("authorization: Bearer"));
  EXPECT_THAT(std::string(Connect(secrets_->at("revoked")).client.ListModels().status().message()),
              HasSubstr("revoked"));
  // Another scheme than Bearer.
  auto stub = v1::Models::NewStub(Connect("").channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Basic " + *operator_secret_);
  v1::ListModelsResponse response;
  grpc::Status s = stub->ListModels(&context, v1::ListModelsRequest(), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("Bearer"));
}

TEST_F(AuthTest, AgentActsOnlyForItsOwnDevice) {
  Session agent = Connect(secrets_->at("agent"));
  Session op = Connect(*operator_secret_);
  const int64_t b_before = op.client.GetDevice("dev-b")->measurement_count();
  const int64_t a_before = op.client.GetDevice("dev-a")->measurement_count();

  // A batch naming another device is refused whole: not even its dev-a row is stored.
  absl::Status s = agent.client
                       .SendMeasurements({TestMeasurement("own-1", "dev-a", 11, 2.0),
                                          TestMeasurement("other-1", "dev-b", 12, 2.0)},
                                         2)
                       .status();
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("measurements[1].device_id"));
  EXPECT_EQ(op.client.GetDevice("dev-b")->measurement_count(), b_before);
  EXPECT_EQ(op.client.GetDevice("dev-a")->measurement_count(), a_before);

  EXPECT_EQ(agent.client.RegisterDevice(TestDevice("dev-b")).status().code(),
            Code::kPermissionDenied);
  v1::RegisterDeviceRequest derived = TestDevice("dev-a");
  derived.set_id("");  // an agent may not let the server pick another id
  EXPECT_EQ(agent.client.RegisterDevice(derived).status().code(), Code::kPermissionDenied);
  v1::ReportDescriptorRequest descriptor;
  descriptor.set_device_id("dev-b");
  EXPECT_EQ(agent.client.ReportDescriptor(descriptor).status().code(), Code::kPermissionDenied);

  // Its own device still works afterwards.
  EXPECT_TRUE(agent.client.SendMeasurements({TestMeasurement("own-2", "dev-a", 13, 2.0)}, 1).ok());
  EXPECT_EQ(op.client.GetDevice("dev-a")->measurement_count(), a_before + 1);
}

// Replacing stored measurements (maplex import --replace) is the operator's: an agent may
// not, even for its own device (a client may not stream measurements at all).
TEST_F(AuthTest, OnlyAnOperatorReplacesMeasurements) {
  Session op = Connect(*operator_secret_);
  const int64_t before = op.client.GetDevice("dev-a")->measurement_count();
  for (const char* who : {"agent"}) {
    Session s = Connect(secrets_->at(who));
    absl::Status status =
        s.client.SendMeasurements({TestMeasurement("fix-1", "dev-a", 14, 2.0)}, 1, nullptr, true)
            .status();
    EXPECT_EQ(status.code(), Code::kPermissionDenied) << who << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("replace")) << who;
  }
  EXPECT_EQ(op.client.GetDevice("dev-a")->measurement_count(), before);
  EXPECT_TRUE(
      op.client.SendMeasurements({TestMeasurement("fix-1", "dev-a", 14, 2.0)}, 1, nullptr, true)
          .ok());
  EXPECT_EQ(op.client.GetDevice("dev-a")->measurement_count(), before + 1);
}

TEST_F(AuthTest, RevokingATokenRefusesItsNextCall) {
  Session op = Connect(*operator_secret_);
  v1::CreateTokenResponse t = Create(op, v1::ROLE_CLIENT, "");
  Session holder = Connect(t.secret());
  EXPECT_TRUE(holder.client.ListModels().ok());
  ASSERT_TRUE(op.client.RevokeToken(t.token().id()).ok());
  EXPECT_EQ(holder.client.ListModels().status().code(), Code::kUnauthenticated);
  // The list shows it revoked and never shows a secret.
  absl::StatusOr<std::vector<v1::Token>> all = op.client.ListTokens();
  ASSERT_TRUE(all.ok());
  bool seen = false;
  for (const v1::Token& token : *all) {
    if (token.id() == t.token().id()) {
      seen = true;
      EXPECT_TRUE(token.revoked());
    }
    EXPECT_THAT(token.DebugString(), ::testing::Not(HasSubstr(t.secret())));
  }
  EXPECT_TRUE(seen);
}

TEST_F(AuthTest, TokenRequestsAreChecked) {
  Session op = Connect(*operator_secret_);
  v1::CreateTokenRequest agent_without_device;
  agent_without_device.set_role(v1::ROLE_AGENT);
  EXPECT_EQ(op.client.CreateToken(agent_without_device).status().code(), Code::kInvalidArgument);
  v1::CreateTokenRequest client_with_device;
  client_with_device.set_role(v1::ROLE_CLIENT);
  client_with_device.set_device_id("dev-a");
  EXPECT_EQ(op.client.CreateToken(client_with_device).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(op.client.CreateToken(v1::CreateTokenRequest()).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(op.client.RevokeToken(424242).status().code(), Code::kNotFound);
}

TEST_F(AuthTest, HealthStaysOpen) {
  // Probes (kubelet, load balancers) carry no token; health reveals no data.
  auto status = Connect("").client.Health("");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(AuthTest, BootstrapFileIsPrivate) {
  struct stat st;
  ASSERT_EQ(stat(dir_->File("operator.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_THAT(*operator_secret_, ::testing::StartsWith("mplx_"));
  EXPECT_EQ(operator_secret_->size(), 5u + 64u);
}

}  // namespace
}  // namespace maplex::server

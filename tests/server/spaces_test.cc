// Architectures of two spaces over every RPC that takes or returns one (issue #12): FBNet
// measurements are ingested, listed per space in pages, counted per space and replayed
// idempotently beside NB201 ones; a malformed FBNet string, a wrong layer count, an unknown
// block or mixed spaces in one request are INVALID_ARGUMENT naming the position, and nothing
// of the request is stored; FBNet is planned before any model exists.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maplex/v1/ingest.grpc.pb.h"
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

// Canonical FBNet strings of `count` distinct sampled architectures.
std::vector<std::string> FbnetArchs(int count, uint64_t seed) {
  std::vector<std::string> out;
  for (const core::Architecture& a : core::FbnetSpace::Get().Sample(count, seed)) {
    out.push_back(a.ToString());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

v1::Measurement FbnetMeasurement(const std::string& id, const std::string& device,
                                 const std::string& arch, double ms) {
  v1::Measurement m = TestMeasurement(id, device, 0, ms);
  m.mutable_arch()->Clear();
  m.mutable_arch()->set_space("fbnet");
  m.mutable_arch()->set_canonical(arch);
  return m;
}

// `arch` with the block of `layer` replaced by `block`.
std::string WithBlock(const std::string& arch, int layer, const std::string& block) {
  std::vector<std::string> blocks = absl::StrSplit(arch, '-');
  blocks[layer] = block;
  return absl::StrJoin(blocks, "-");
}

class SpacesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MaplexServer::Start(TestServerOptions(dir_.File("maplex.db")));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_.emplace(ConnectTo(*server_));
    ASSERT_TRUE(client_->RegisterDevice(TestDevice("board")).ok());
    archs_ = FbnetArchs(7, 3);
    ASSERT_EQ(archs_.size(), 7u);
  }

  // Everything the store holds of "board", as the API shows it.
  std::string StoreState() {
    auto device = client_->GetDevice("board");
    EXPECT_TRUE(device.ok()) << device.status();
    std::string state = absl::StrCat("total=", device->measurement_count());
    for (const char* space : {"nb201", "fbnet"}) {
      auto it = device->measurement_count_by_space().find(space);
      absl::StrAppend(&state, " ", space, "=",
                      it == device->measurement_count_by_space().end() ? 0 : it->second);
      auto listed = client_->ListMeasurements("board", space);
      EXPECT_TRUE(listed.ok()) << listed.status();
      for (const auto& m : *listed)
        absl::StrAppend(&state, " ", m.arch().canonical(), "=", m.latency_ms());
    }
    return state;
  }

  grpc::Status NextTasks(const std::string& space, v1::NextTasksResponse* response) {
    auto stub = v1::Ingest::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    v1::NextTasksRequest request;
    request.set_device_id("board");
    request.set_count(3);
    request.set_space(space);
    return stub->NextTasks(&context, request, response);
  }

  TempDir dir_;
  std::unique_ptr<MaplexServer> server_;
  std::optional<client::MaplexClient> client_;
  std::vector<std::string> archs_;  // sorted canonical strings
};

TEST_F(SpacesTest, FbnetMeasurementsAreStoredListedInPagesAndCountedPerSpace) {
  std::vector<v1::Measurement> fbnet;
  for (size_t i = 0; i < archs_.size(); ++i) {
    fbnet.push_back(FbnetMeasurement(absl::StrCat("f", i), "board", archs_[i], 10.0 + i));
  }
  auto ack = client_->SendMeasurements(fbnet, 100);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->inserted(), 7);
  // NB201 as before, in its older forms.
  ASSERT_TRUE(client_
                  ->SendMeasurements({TestMeasurement("n1", "board", 30, 3.0),
                                      TestMeasurement("n2", "board", 10, 1.5)},
                                     10)
                  .ok());

  auto device = client_->GetDevice("board");
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->measurement_count(), 9);
  EXPECT_EQ(device->measurement_count_by_space().at("fbnet"), 7);
  EXPECT_EQ(device->measurement_count_by_space().at("nb201"), 2);

  // Pages of 3: 3 + 3 + 1, in canonical order, each with its space and string.
  for (int page_size : {3, 0}) {
    SCOPED_TRACE(page_size);
    auto listed = client_->ListMeasurements("board", "fbnet", page_size);
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->size(), 7u);
    for (size_t i = 0; i < 7; ++i) {
      EXPECT_EQ((*listed)[i].arch().space(), "fbnet");
      EXPECT_EQ((*listed)[i].arch().canonical(), archs_[i]);
      EXPECT_EQ((*listed)[i].latency_ms(), 10.0 + i);
      EXPECT_EQ((*listed)[i].arch_index(), 0);
    }
  }
  // NB201: by index, the index and the cell string both given; the default space.
  auto nb201 = client_->ListMeasurements("board", "", 1);
  ASSERT_TRUE(nb201.ok()) << nb201.status();
  ASSERT_EQ(nb201->size(), 2u);
  EXPECT_EQ((*nb201)[0].arch_index(), 10);
  EXPECT_EQ((*nb201)[1].arch_index(), 30);
  EXPECT_EQ((*nb201)[1].arch().canonical(), *core::Nb201Space::Get().ArchString(30));

  // Replays are idempotent: nothing new, every id acknowledged.
  auto replay = client_->SendMeasurements(fbnet, 100);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->inserted(), 0);
  EXPECT_EQ(replay->already_stored(), 7);
  // The same id with another architecture is refused, naming both.
  auto changed = client_->SendMeasurements({FbnetMeasurement("f0", "board", archs_[1], 10.0)}, 1);
  EXPECT_EQ(changed.status().code(), Code::kAlreadyExists);
  EXPECT_THAT(std::string(changed.status().message()), HasSubstr(archs_[0]));
  EXPECT_EQ(client_->GetDevice("board")->measurement_count(), 9);
}

TEST_F(SpacesTest, BadFbnetMeasurementsAreRefusedByPositionAndStoreNothing) {
  ASSERT_TRUE(client_->SendMeasurements({FbnetMeasurement("f0", "board", archs_[0], 5.0)}, 1).ok());
  const std::string before = StoreState();
  std::string short_arch = archs_[2].substr(0, archs_[2].rfind('-'));
  struct Case {
    const char* name;
    v1::Measurement bad;
    const char* field;
    const char* detail;
  };
  v1::Measurement mixed = TestMeasurement("n9", "board", 9, 1.0);
  const Case cases[] = {
      {"unknown block", FbnetMeasurement("b", "board", WithBlock(archs_[2], 4, "k9_e1"), 1.0),
       "measurements[2].arch.canonical", "k9_e1"},
      {"wrong layer count", FbnetMeasurement("b", "board", short_arch, 1.0),
       "measurements[2].arch.canonical", "21"},
      {"malformed string", FbnetMeasurement("b", "board", WithBlock(archs_[2], 6, ""), 1.0),
       "measurements[2].arch.canonical", "6"},
      {"mixed spaces", mixed, "measurements[2].arch.space", "nb201 differs from fbnet"},
      {"cell form in fbnet",
       [] {
         v1::Measurement m = FbnetMeasurement("b", "board", "", 1.0);
         m.mutable_arch()->set_cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
         return m;
       }(),
       "measurements[2].arch.cell", "nb201"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // Two good new rows before the bad one: the whole batch is refused.
    auto r = client_->SendMeasurements({FbnetMeasurement("g1", "board", archs_[3], 2.0),
                                        FbnetMeasurement("g2", "board", archs_[4], 2.0), c.bad},
                                       3);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.field));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.detail));
    EXPECT_EQ(StoreState(), before);
  }
}

TEST_F(SpacesTest, PredictRefusesBadOrMixedFbnetArchitecturesBeforeAskingTheModel) {
  auto predict = [&](const std::vector<v1::Architecture>& archs) {
    return client_->Predict("board", archs).status();
  };
  const v1::Architecture good = client::Canonical("fbnet", archs_[0]);
  auto expect = [](const absl::Status& s, Code code, const std::string& text) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(text));
  };
  expect(predict({good, client::Canonical("fbnet", WithBlock(archs_[1], 20, "k3_e9"))}),
         Code::kInvalidArgument, "archs[1].canonical");
  expect(predict({good, good, client::Canonical("fbnet", archs_[1] + "-skip")}),
         Code::kInvalidArgument, "archs[2].canonical");
  expect(predict({good, client::Nb201Index(3)}), Code::kInvalidArgument,
         "archs[1].space: space nb201 differs from fbnet of archs[0]");
  expect(predict({client::Nb201Index(3), good}), Code::kInvalidArgument,
         "archs[1].space: space fbnet differs from nb201 of archs[0]");
  expect(predict({client::Canonical("resnet", "x")}), Code::kInvalidArgument,
         "archs[0].space: \"resnet\" is not a known search space (nb201, fbnet)");
  // A compact FBNet batch: 22 codes 0..8 per architecture.
  v1::ArchitectureBatch batch;
  batch.set_space("fbnet");
  std::string codes(44, 1);
  codes[22 + 7] = 9;
  batch.set_choices(codes);
  expect(client_->PredictBatch("board", batch).status(), Code::kInvalidArgument,
         "architecture 1, position 7: code 9 is outside 0..8");
  // Valid FBNet architectures reach the model: none is trained yet
  // (tests/server/fbnet_serving_test.cc has the served FBNet model).
  expect(predict({good}), Code::kUnavailable, "no model is trained yet");
  codes[22 + 7] = 8;
  batch.set_choices(codes);
  expect(client_->PredictBatch("board", batch).status(), Code::kUnavailable,
         "no model is trained yet");
}

TEST_F(SpacesTest, NextTasksPlansNb201AndFbnetWithoutAModel) {
  v1::NextTasksResponse nb201;
  grpc::Status s = NextTasks("", &nb201);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(nb201.archs_size(), 3);
  v1::NextTasksResponse alias;
  ASSERT_TRUE(NextTasks("nasbench201", &alias).ok());
  EXPECT_EQ(alias.archs_size(), 3);
  v1::NextTasksResponse fbnet;
  // No FBNet model yet: the function planner's choice without references.
  s = NextTasks("fbnet", &fbnet);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(fbnet.archs_size(), 3);
  EXPECT_THAT(fbnet.strategy(), HasSubstr("diverse-compute"));
  for (const v1::Architecture& a : fbnet.archs()) {
    EXPECT_EQ(a.space(), "fbnet");
    EXPECT_TRUE(core::FbnetSpace::Get().Parse(a.canonical()).ok()) << a.canonical();
  }
  s = NextTasks("resnet", &fbnet);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("space: \"resnet\""));
}

TEST_F(SpacesTest, ListMeasurementsRefusesBadSpacesPagesAndTokens) {
  auto expect = [](const absl::Status& s, const std::string& text) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(text));
  };
  expect(client_->ListMeasurements("board", "resnet").status(), "space: \"resnet\"");
  expect(client_->ListMeasurements("board", "fbnet", -1).status(), "page_size: -1");
  expect(client_->ListMeasurements("board", "fbnet", 20001).status(), "page_size: 20001");
  auto stub = v1::DeviceRegistry::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::ListMeasurementsRequest request;
  request.set_device_id("board");
  request.set_page_token("not-an-index");
  v1::ListMeasurementsResponse response;
  grpc::Status s = stub->ListMeasurements(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("page_token"));
  EXPECT_EQ(client_->ListMeasurements("ghost", "fbnet").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace maplex::server

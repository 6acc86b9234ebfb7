// The uplink against an in-process server on 127.0.0.1: delivery, acks, retries, refusals.
#include "agent/uplink/uplink.h"

#include <grpcpp/grpcpp.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace maplex::agent {
namespace {

using ::maplex::testing::TempDir;
using ::maplex::testing::TestDevice;
using ::maplex::testing::TestMeasurement;
using ::maplex::testing::TestServerOptions;

TEST(BackoffTest, GrowsToTheCapWithJitter) {
  Backoff b(absl::Milliseconds(100), absl::Seconds(1), 0.5, 7);
  std::vector<absl::Duration> d;
  for (int i = 0; i < 8; ++i) d.push_back(b.Next());
  EXPECT_GE(d[0], absl::Milliseconds(50));
  EXPECT_LE(d[0], absl::Milliseconds(150));
  EXPECT_GE(d[3], absl::Milliseconds(400));  // 800 ms ± 50 %
  for (auto x : d) EXPECT_LE(x, absl::Milliseconds(1500));
  b.Reset();
  EXPECT_LE(b.Next(), absl::Milliseconds(150));
}

TEST(IsRetryableTest, TransientVersusRefused) {
  EXPECT_TRUE(IsRetryable(absl::UnavailableError("")));
  EXPECT_TRUE(IsRetryable(absl::DeadlineExceededError("")));
  EXPECT_FALSE(IsRetryable(absl::InvalidArgumentError("")));
  EXPECT_FALSE(IsRetryable(absl::NotFoundError("")));
}

class UplinkTest : public ::testing::Test {
 protected:
  void StartServer() {
    auto options = TestServerOptions(dir_.File("maplex.db"));
    options.listen_address = "127.0.0.1:" + std::to_string(port_);
    auto server = server::MaplexServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    port_ = server_->port();
  }
  void SetUp() override {
    StartServer();
    auto client = maplex::testing::ConnectTo(*server_);
    ASSERT_TRUE(client.RegisterDevice(TestDevice("board")).ok());
    spool_ = *Spool::Open(dir_.File("spool.db"));
  }
  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                               grpc::InsecureChannelCredentials());
  }
  UplinkOptions FastOptions() {
    UplinkOptions o;
    o.batch_size = 7;
    o.sleep = [this](absl::Duration d) {
      slept_ += d;
      absl::SleepFor(absl::Milliseconds(50));
    };
    return o;
  }

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<server::MaplexServer> server_;
  std::unique_ptr<Spool> spool_;
  absl::Duration slept_;
};

TEST_F(UplinkTest, DeliversEverythingAndEmptiesTheSpool) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(spool_->Add(TestMeasurement("m" + std::to_string(i), "board", i, 2.0)).ok());
  }
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  ASSERT_TRUE(uplink.Drain(absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(*spool_->Depth(), 0);
  EXPECT_EQ(uplink.acked(), 30);
  // Batches of 7 report the spool's depth before each: 30, 23, 16, 9 and last 2.
  EXPECT_THAT(server_->metrics().Expose(),
              ::testing::HasSubstr("maplex_agent_spool_depth{device=\"board\"} 2\n"));
  auto client = maplex::testing::ConnectTo(*server_);
  EXPECT_EQ(client.GetDevice("board")->measurement_count(), 30);
}

TEST_F(UplinkTest, RetriesWhileTheServerIsDownAndDeliversWhenItReturns) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(spool_->Add(TestMeasurement("m" + std::to_string(i), "board", i, 2.0)).ok());
  }
  server_->Shutdown();
  server_.reset();
  std::thread restart([this] {
    absl::SleepFor(absl::Milliseconds(600));
    StartServer();
  });
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  absl::Status s = uplink.Drain(absl::Now() + absl::Seconds(60));
  restart.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GT(slept_, absl::ZeroDuration());  // it backed off at least once
  EXPECT_EQ(*spool_->Depth(), 0);
  auto client = maplex::testing::ConnectTo(*server_);
  EXPECT_EQ(client.GetDevice("board")->measurement_count(), 10);
}

TEST_F(UplinkTest, ARefusedBatchStaysSpooledAndIsReported) {
  ASSERT_TRUE(spool_->Add(TestMeasurement("ok", "board", 1, 2.0)).ok());
  ASSERT_TRUE(spool_->Add(TestMeasurement("ghost", "nobody", 2, 2.0)).ok());
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  absl::Status s = uplink.Drain(absl::Now() + absl::Seconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*spool_->Depth(), 2);  // nothing lost; the batch was refused whole
  EXPECT_EQ(slept_, absl::ZeroDuration());  // no pointless retries
}

TEST_F(UplinkTest, GivesUpAtTheDeadlineWithTheLastError) {
  ASSERT_TRUE(spool_->Add(TestMeasurement("m", "board", 1, 2.0)).ok());
  server_->Shutdown();
  server_.reset();
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  absl::Status s = uplink.Drain(absl::Now() + absl::Seconds(2));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*spool_->Depth(), 1);
}

}  // namespace
}  // namespace maplex::agent

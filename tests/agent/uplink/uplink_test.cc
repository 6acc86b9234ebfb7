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

TEST(BackoffTest, FullJitterUnderACeilingThatDoublesToTheCap) {
  Backoff b(absl::Milliseconds(250), absl::Seconds(30), 7);
  const absl::Duration ceilings[] = {
      absl::Milliseconds(250), absl::Milliseconds(500), absl::Seconds(1),  absl::Seconds(2),
      absl::Seconds(4),        absl::Seconds(8),        absl::Seconds(16), absl::Seconds(30),
      absl::Seconds(30),       absl::Seconds(30)};
  for (absl::Duration ceiling : ceilings) {
    EXPECT_EQ(b.Ceiling(), ceiling);
    absl::Duration d = b.Next();
    EXPECT_GE(d, absl::ZeroDuration());
    EXPECT_LE(d, ceiling);
  }
  b.Reset();
  EXPECT_EQ(b.Ceiling(), absl::Milliseconds(250));
}

TEST(BackoffTest, DelaysSpreadOverTheWholeRangeBelowTheCeiling) {
  // Full jitter: draws cover [0, ceiling], mean about half of it (not ceiling +- 50 %).
  Backoff b(absl::Seconds(30), absl::Seconds(30), 11);
  absl::Duration sum, lowest = absl::InfiniteDuration(), highest;
  for (int i = 0; i < 2000; ++i) {
    absl::Duration d = b.Next();
    sum += d;
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
  }
  EXPECT_LT(lowest, absl::Seconds(1));
  EXPECT_GT(highest, absl::Seconds(29));
  EXPECT_NEAR(absl::ToDoubleSeconds(sum / 2000), 15.0, 1.0);
}

TEST(IsPermanentRefusalTest, RefusalsOfTheDataVersusEverythingElse) {
  for (absl::Status refused :
       {absl::InvalidArgumentError(""), absl::NotFoundError(""), absl::FailedPreconditionError(""),
        absl::PermissionDeniedError(""), absl::AlreadyExistsError(""), absl::OutOfRangeError("")}) {
    EXPECT_TRUE(IsPermanentRefusal(refused)) << refused;
  }
  for (absl::Status transient :
       {absl::UnavailableError(""), absl::DeadlineExceededError(""),
        absl::ResourceExhaustedError(""), absl::UnauthenticatedError(""), absl::InternalError(""),
        absl::UnknownError(""), absl::AbortedError(""), absl::CancelledError(""),
        absl::UnimplementedError("")}) {
    EXPECT_FALSE(IsPermanentRefusal(transient)) << transient;
  }
}

class UplinkTest : public ::testing::Test {
 protected:
  void StartServer() {
    auto options = TestServerOptions(dir_.File("maplex.db"));
    options.limits = limits_;
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

  // Adds measurements `first`..`first + n - 1` of `device` to the spool.
  void AddToSpool(const std::string& prefix, const std::string& device, int first, int n) {
    for (int i = first; i < first + n; ++i) {
      ASSERT_TRUE(spool_->Add(TestMeasurement(prefix + std::to_string(i), device, i, 2.0)).ok());
    }
  }

  server::Limits limits_;
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
  ASSERT_TRUE(uplink.Drain(absl::Seconds(30)).ok());
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
  absl::Status s = uplink.Drain(absl::Seconds(60));
  restart.join();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GT(slept_, absl::ZeroDuration());  // it backed off at least once
  EXPECT_EQ(*spool_->Depth(), 0);
  auto client = maplex::testing::ConnectTo(*server_);
  EXPECT_EQ(client.GetDevice("board")->measurement_count(), 10);
}

TEST_F(UplinkTest, ARefusedMeasurementIsDeadLetteredAndTheRestIsDelivered) {
  ASSERT_TRUE(spool_->Add(TestMeasurement("ok-1", "board", 1, 2.0)).ok());
  ASSERT_TRUE(spool_->Add(TestMeasurement("ghost", "nobody", 2, 2.0)).ok());
  ASSERT_TRUE(spool_->Add(TestMeasurement("ok-3", "board", 3, 2.0)).ok());
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  absl::Status s = uplink.Drain(absl::Seconds(30));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(*spool_->Depth(), 0);
  EXPECT_EQ(uplink.dead_lettered(), 1);
  auto letters = *spool_->DeadLetters(10);
  ASSERT_EQ(letters.size(), 1u);  // only the measurement the refusal named
  EXPECT_EQ(letters[0].measurement.id(), "ghost");
  EXPECT_THAT(letters[0].reason, ::testing::HasSubstr("NOT_FOUND"));
  EXPECT_THAT(letters[0].reason, ::testing::HasSubstr("nobody"));
  EXPECT_GT(letters[0].refused_at_unix_ms, 0);
  EXPECT_EQ(slept_, absl::ZeroDuration());  // a refusal is an answer, not an outage
  auto client = maplex::testing::ConnectTo(*server_);
  EXPECT_EQ(client.GetDevice("board")->measurement_count(), 2);
}

// Before dead letters, a retired device's batch was refused, kept at the head of the
// spool and sent again every 500 ms forever, holding back everything behind it.
TEST_F(UplinkTest, ARetiredDevicesBatchIsDeadLetteredAndLaterBatchesFlow) {
  auto client = maplex::testing::ConnectTo(*server_);
  ASSERT_TRUE(client.RegisterDevice(TestDevice("old")).ok());
  ASSERT_TRUE(client.RetireDevice("old").ok());
  AddToSpool("old-", "old", 0, 10);  // the first batch (7) and part of the second
  AddToSpool("new-", "board", 10, 20);
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  // The daemon's step: one Tick with something to send delivers what the server takes.
  EXPECT_EQ(uplink.Tick(absl::Milliseconds(500)), absl::Milliseconds(500));
  EXPECT_EQ(*spool_->Depth(), 0);
  EXPECT_EQ(*spool_->DeadLetterCount(), 10);
  EXPECT_THAT((*spool_->DeadLetters(1))[0].reason, ::testing::HasSubstr("retired"));
  EXPECT_EQ(uplink.acked(), 20);
  EXPECT_EQ(client.GetDevice("board")->measurement_count(), 20);
}

TEST_F(UplinkTest, AStricterBatchLimitSplitsBatchesInsteadOfWedging) {
  limits_.max_measurements_per_batch = 3;  // the agent sends 7 at a time
  server_->Shutdown();
  server_.reset();
  StartServer();
  AddToSpool("m", "board", 0, 20);
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  absl::Status s = uplink.Drain(absl::Seconds(30));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(*spool_->Depth(), 0);
  EXPECT_EQ(*spool_->DeadLetterCount(), 0);  // RESOURCE_EXHAUSTED refuses no data for good
  EXPECT_EQ(uplink.acked(), 20);
  EXPECT_EQ(uplink.batch_size(), 7);  // back to full size once the spool is empty
  EXPECT_EQ(slept_, absl::ZeroDuration());
}

// A server that is down: every attempt fails at once, and the waits between attempts
// are full-jitter draws under a ceiling doubling from 250 ms to 30 s, measured on the
// agent's clock seam (a ManualClock the fake sleep advances; nothing really sleeps).
TEST_F(UplinkTest, ADownServerIsRetriedWithGrowingJitteredDelays) {
  AddToSpool("m", "board", 0, 3);
  server_->Shutdown();
  server_.reset();
  ManualClock clock;
  std::vector<absl::Duration> waits;
  UplinkOptions options;
  options.clock = &clock;
  options.sleep = [&](absl::Duration d) {
    waits.push_back(d);
    clock.AdvanceNanos(absl::ToInt64Nanoseconds(d));
  };
  Uplink uplink(spool_.get(), Channel(), options);
  const absl::Time start = absl::Now();
  absl::Status s = uplink.Drain(absl::Minutes(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));  // no real sleeping
  EXPECT_EQ(*spool_->Depth(), 3);                     // nothing lost, nothing dead-lettered
  EXPECT_EQ(*spool_->DeadLetterCount(), 0);
  ASSERT_GE(waits.size(), 20u);  // 10 min of fake time at <= 30 s a wait
  absl::Duration ceiling = absl::Milliseconds(250), slept;
  for (absl::Duration w : waits) {
    EXPECT_LE(w, ceiling);
    slept += w;
    ceiling = std::min(ceiling * 2, absl::Seconds(30));
  }
  EXPECT_LE(slept, absl::Minutes(10));
  // The first four waits are under 2 s together; later ones average ~15 s.
  EXPECT_LT(waits[0] + waits[1] + waits[2] + waits[3], absl::Seconds(2));
  absl::Duration late;
  for (size_t i = 8; i < waits.size(); ++i) late += waits[i];
  EXPECT_GT(late / static_cast<int64_t>(waits.size() - 8), absl::Seconds(8));

  // The daemon's step backs off the same way and returns the idle wait once it delivers.
  Uplink daemon(spool_.get(), Channel(), options);
  absl::Duration previous_ceiling = absl::Milliseconds(250);
  for (int i = 0; i < 5; ++i) {
    EXPECT_LE(daemon.Tick(absl::Milliseconds(500)), previous_ceiling);
    previous_ceiling *= 2;
  }
  StartServer();
  Uplink after(spool_.get(), Channel(), options);
  EXPECT_EQ(after.Tick(absl::Milliseconds(500)), absl::Milliseconds(500));
  EXPECT_EQ(*spool_->Depth(), 0);
}

TEST_F(UplinkTest, GivesUpAtTheDeadlineWithTheLastError) {
  ASSERT_TRUE(spool_->Add(TestMeasurement("m", "board", 1, 2.0)).ok());
  server_->Shutdown();
  server_.reset();
  Uplink uplink(spool_.get(), Channel(), FastOptions());
  absl::Status s = uplink.Drain(absl::Seconds(2));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*spool_->Depth(), 1);
}

}  // namespace
}  // namespace maplex::agent

// The pipelined StreamMeasurements (server/services/ingest_service.h): a batch is checked
// while the one before it commits, and the contract stays the serial one. The service runs
// alone on a grpc::Server over 127.0.0.1:0; the store's commit hook and the service's
// batch-checked hook order the two stages deterministically.
#include "server/services/ingest_service.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/authorizer.h"
#include "server/model_slot.h"
#include "server/server_metrics.h"
#include "server/store/store.h"
#include "server/trainer.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::TempDir;
using ::maplex::testing::TestDevice;
using ::maplex::testing::TestMeasurement;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// How long a stage waits for the other before the test calls the pipeline broken.
constexpr auto kStageWait = std::chrono::seconds(5);

// A flag one thread raises and another waits for, with a bound.
class Signal {
 public:
  void Raise() {
    std::lock_guard<std::mutex> lock(mu_);
    raised_ = true;
    cv_.notify_all();
  }
  // True when raised within kStageWait.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kStageWait, [this] { return raised_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool raised_ = false;
};

v1::MeasurementBatch Batch(const std::vector<v1::Measurement>& ms) {
  v1::MeasurementBatch b;
  for (const v1::Measurement& m : ms) *b.add_measurements() = m;
  return b;
}

std::vector<std::string> Ids(const v1::MeasurementAck& ack) {
  return {ack.committed_ids().begin(), ack.committed_ids().end()};
}

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.File("maplex.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->RegisterDevice(TestDevice("board")).ok());
    trainer_ = std::make_unique<Trainer>(store_.get(), &slot_, TrainerOptions());
    service_ = std::make_unique<IngestService>(&authorizer_, store_.get(), trainer_.get(), &slot_,
                                               &metrics_, Limits());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
    service_.reset();
    store_->SetBeforeCommitHookForTest(nullptr);
  }

  // Starts serving; hooks must be set before.
  void Serve() {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Ingest::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                    grpc::InsecureChannelCredentials()));
  }

  // A context whose deadline turns a hung stream into a failure instead of a hung test.
  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return context;
  }

  int64_t Stored() { return *store_->MeasurementCount(); }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  ModelSlot slot_;
  ServerMetrics metrics_{&slot_};
  Authorizer authorizer_{AuthMode::kNone, nullptr};
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Ingest::Stub> stub_;
};

TEST_F(IngestServiceTest, ABatchRefusedWhileTheOneBeforeCommitsEndsTheStreamAfterItsAck) {
  // Batch 2 is refused (measurements[1] has a negative latency) while batch 1's commit is
  // held: batch 1 must still be committed and acknowledged, then the stream ends with the
  // refusal and nothing of batch 2 is stored.
  // Set on the committer thread, read here after the stream ended.
  Signal refused;
  std::atomic<bool> refused_during_commit{false};
  std::atomic<int> commits{0};
  service_->SetBatchCheckedHookForTest([&](const absl::Status& s) {
    if (!s.ok()) refused.Raise();
  });
  store_->SetBeforeCommitHookForTest([&] {
    if (++commits == 1) refused_during_commit = refused.Wait();
  });
  Serve();

  auto context = Context();
  auto stream = stub_->StreamMeasurements(context.get());
  ASSERT_TRUE(stream->Write(
      Batch({TestMeasurement("a0", "board", 0, 1.0), TestMeasurement("a1", "board", 1, 2.0)})));
  ASSERT_TRUE(stream->Write(
      Batch({TestMeasurement("b0", "board", 2, 3.0), TestMeasurement("b1", "board", 3, -1.0)})));
  v1::MeasurementAck ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_THAT(Ids(ack), ElementsAre("a0", "a1"));
  EXPECT_EQ(ack.inserted(), 2);
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("measurements[1].stats.median_ms"));

  EXPECT_TRUE(refused_during_commit) << "batch 2 was not checked while batch 1 committed";
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(Stored(), 2);
}

TEST_F(IngestServiceTest, NothingAfterAFailedCommitIsStored) {
  // "c0" is stored with 1 ms. Batch 1 inserts 2,000 new rows and then replays "c0" with
  // 2 ms, which the commit refuses; batch 2 (one valid row) is checked and queued while
  // batch 1's rows are inserted. Neither may be stored.
  ASSERT_TRUE(service_->StoreBatch(Batch({TestMeasurement("c0", "board", 0, 1.0)})).ok());
  Serve();

  std::vector<v1::Measurement> first;
  for (int i = 1; i <= 2000; ++i) {
    first.push_back(TestMeasurement("f" + std::to_string(i), "board", i, 1.0));
  }
  first.push_back(TestMeasurement("c0", "board", 0, 2.0));
  auto context = Context();
  auto stream = stub_->StreamMeasurements(context.get());
  ASSERT_TRUE(stream->Write(Batch(first)));
  ASSERT_TRUE(stream->Write(Batch({TestMeasurement("d0", "board", 5000, 3.0)})));
  v1::MeasurementAck ack;
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("\"c0\""));
  EXPECT_EQ(Stored(), 1);
}

TEST_F(IngestServiceTest, AFailedCommitEndsTheStreamWhileTheClientWaitsForItsAck) {
  // The agent's uplink sends one batch and waits for its ack before sending more: the
  // server then has a read pending when the commit fails, and must still end the stream
  // with the commit's error at once rather than wait for a batch that never comes.
  ASSERT_TRUE(service_->StoreBatch(Batch({TestMeasurement("e0", "board", 0, 1.0)})).ok());
  Serve();
  auto context = Context();
  auto stream = stub_->StreamMeasurements(context.get());
  ASSERT_TRUE(stream->Write(Batch({TestMeasurement("e0", "board", 0, 5.0)})));
  v1::MeasurementAck ack;
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  EXPECT_EQ(Stored(), 1);
}

TEST_F(IngestServiceTest, AcksComeInOrderAndEachAfterItsCommit) {
  // Many batches sent at once: the pipeline must not reorder them, and an ack may only
  // name ids whose transaction committed.
  std::atomic<int> commits{0};  // counted on the committer thread
  store_->SetBeforeCommitHookForTest([&] { ++commits; });
  Serve();
  constexpr int kBatches = 30;
  auto context = Context();
  auto stream = stub_->StreamMeasurements(context.get());
  for (int b = 0; b < kBatches; ++b) {
    std::vector<v1::Measurement> ms;
    for (int i = 0; i < 3; ++i) {
      const int n = b * 3 + i;
      ms.push_back(TestMeasurement("m" + std::to_string(n), "board", n, 1.0 + n));
    }
    ASSERT_TRUE(stream->Write(Batch(ms)));
  }
  stream->WritesDone();
  v1::MeasurementAck ack;
  int b = 0;
  while (stream->Read(&ack)) {
    ASSERT_EQ(ack.committed_ids_size(), 3);
    EXPECT_EQ(ack.committed_ids(0), "m" + std::to_string(b * 3));
    // Every acknowledged id is readable from the store: its transaction has committed.
    EXPECT_GE(Stored(), (b + 1) * 3);
    ++b;
  }
  EXPECT_EQ(b, kBatches);
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(commits, kBatches);
  EXPECT_EQ(Stored(), kBatches * 3);
}

// The ack's ids are serialized while the batch waits for the committer and its counts
// after the commit (IngestService::CheckedBatch); the client parses them as one ack.
TEST_F(IngestServiceTest, AnAckNamesEveryIdAndCountsNewRowsAndReplays) {
  Serve();
  auto context = Context();
  auto stream = stub_->StreamMeasurements(context.get());
  std::vector<v1::Measurement> first;
  for (int i = 0; i < 4; ++i) {
    first.push_back(TestMeasurement("id-" + std::to_string(i), "board", i, 1.0 + i));
  }
  // The second batch replays two of the first and adds one.
  std::vector<v1::Measurement> second = {
      first[3], first[1], TestMeasurement("a-much-longer-id-than-sso-allows-xyz", "board", 9, 2.0)};
  ASSERT_TRUE(stream->Write(Batch(first)));
  ASSERT_TRUE(stream->Write(Batch(second)));
  stream->WritesDone();
  v1::MeasurementAck ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_THAT(Ids(ack), ElementsAre("id-0", "id-1", "id-2", "id-3"));
  EXPECT_EQ(ack.inserted(), 4);
  EXPECT_EQ(ack.already_stored(), 0);
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_THAT(Ids(ack), ElementsAre("id-3", "id-1", "a-much-longer-id-than-sso-allows-xyz"));
  EXPECT_EQ(ack.inserted(), 1);
  EXPECT_EQ(ack.already_stored(), 2);
  EXPECT_FALSE(stream->Read(&ack));
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Stored(), 5);
  // The in-process entry point returns the same ack.
  absl::StatusOr<v1::MeasurementAck> again = service_->StoreBatch(Batch(second));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(Ids(*again), ElementsAre("id-3", "id-1", "a-much-longer-id-than-sso-allows-xyz"));
  EXPECT_EQ(again->inserted(), 0);
  EXPECT_EQ(again->already_stored(), 3);
}

}  // namespace
}  // namespace maplex::server

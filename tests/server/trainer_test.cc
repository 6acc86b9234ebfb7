#include "server/trainer.h"

#include <thread>

#include "core/arch/nb201_space.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::TempDir;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *Store::Open(dir_.File("maplex.db"));
    // A reference device covering every cell and a target with 10 samples, related by an
    // exact factor of 2 so any sensible model predicts the target well.
    for (const char* id : {"ref", "target"}) {
      v1::RegisterDeviceRequest r = maplex::testing::TestDevice(id);
      ASSERT_TRUE(store_->RegisterDevice(r).ok());
    }
    std::vector<StoredMeasurement> rows;
    for (int a = 0; a < core::kNb201CellCount; ++a) {
      StoredMeasurement m;
      m.id = "ref:" + std::to_string(a);
      m.device_id = "ref";
      m.arch = *core::Nb201Space::Get().ArchitectureAt(a);
      m.stats.set_median_ms(1.0 + (a % 97) * 0.1 + (a % 13));
      rows.push_back(m);
      if (a % 1500 == 0) {
        m.id = "target:" + std::to_string(a);
        m.device_id = "target";
        m.stats.set_median_ms(2 * m.stats.median_ms());
        rows.push_back(m);
      }
    }
    ASSERT_TRUE(store_->AddMeasurements(rows).ok());
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  ModelSlot slot_;
};

TEST_F(TrainerTest, TrainNowPersistsAndServesANewVersion) {
  Trainer trainer(store_.get(), &slot_, TrainerOptions());
  auto info = trainer.TrainNow();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version(), 1u);
  // One reference device is too few for MAPLE-X: the baseline serves meanwhile.
  EXPECT_EQ(info->method(), "baseline");
  EXPECT_EQ(info->training_devices(), 2);
  EXPECT_EQ(info->training_measurements(), core::kNb201CellCount + 11);
  ASSERT_NE(slot_.Get(), nullptr);
  EXPECT_EQ(slot_.Get()->info.version(), 1u);
  EXPECT_EQ(store_->LatestModel()->value().info.version(), 1u);
  ASSERT_EQ(info->device_accuracy_size(), 2);
  for (const auto& a : info->device_accuracy()) {
    if (a.device_id() == "ref") {
      EXPECT_TRUE(a.reference());
      EXPECT_EQ(a.basis(), "not scored: reference device");
      EXPECT_EQ(a.scored(), 0);
      continue;
    }
    ASSERT_EQ(a.device_id(), "target");
    EXPECT_FALSE(a.reference());
    EXPECT_EQ(a.samples(), 11);
    EXPECT_EQ(a.basis(), "cross-validated");
    EXPECT_EQ(a.folds(), 5);
    EXPECT_EQ(a.scored(), 11);
    // An exact factor of 2 on the reference: every held-out cell is predictable.
    EXPECT_GT(a.spearman(), 0.9);
  }
}

// The figures are held-out: a target whose latencies have nothing to do with the
// architectures (the reference's latencies, rotated among the measured cells) cannot be
// predicted, and its score must say so. Scored on the measurements the served model was
// fit on (it serves them back), it was 1.000 / 1.000 / 0 % whatever the data.
TEST_F(TrainerTest, AccuracyOfAnUnpredictableTargetIsLow) {
  ASSERT_TRUE(store_->RegisterDevice(maplex::testing::TestDevice("noise")).ok());
  std::vector<StoredMeasurement> rows;
  for (int i = 0; i < 40; ++i) {
    StoredMeasurement m;
    m.id = "noise:" + std::to_string(i);
    m.device_id = "noise";
    m.arch = *core::Nb201Space::Get().ArchitectureAt(300 * i + 7);
    const int other = 300 * ((i + 13) % 40) + 7;  // another cell's reference latency
    m.stats.set_median_ms(1.0 + (other % 97) * 0.1 + (other % 13));
    rows.push_back(m);
  }
  ASSERT_TRUE(store_->AddMeasurements(rows).ok());
  Trainer trainer(store_.get(), &slot_, TrainerOptions());
  auto info = trainer.TrainNow();
  ASSERT_TRUE(info.ok()) << info.status();
  bool saw_noise = false;
  for (const auto& a : info->device_accuracy()) {
    if (a.device_id() != "noise") continue;
    saw_noise = true;
    EXPECT_EQ(a.basis(), "cross-validated");
    EXPECT_EQ(a.scored(), 40);
    EXPECT_LT(a.spearman(), 0.5);
    EXPECT_LT(a.acc10(), 0.5);
    EXPECT_GT(a.mape(), 10);
  }
  EXPECT_TRUE(saw_noise);
}

TEST_F(TrainerTest, LoadLatestServesThePersistedVersion) {
  {
    ModelSlot other;
    Trainer first(store_.get(), &other, TrainerOptions());
    ASSERT_TRUE(first.TrainNow().ok());
    ASSERT_TRUE(first.TrainNow().ok());
  }
  Trainer trainer(store_.get(), &slot_, TrainerOptions());
  ASSERT_TRUE(trainer.LoadLatest().ok());
  ASSERT_NE(slot_.Get(), nullptr);
  EXPECT_EQ(slot_.Get()->info.version(), 2u);
  EXPECT_TRUE(slot_.Get()->info.serving());
}

TEST_F(TrainerTest, NotificationsAreDebouncedIntoOneTraining) {
  TrainerOptions options;
  options.debounce = absl::Milliseconds(300);
  Trainer trainer(store_.get(), &slot_, options);
  trainer.Start();
  for (int i = 0; i < 5; ++i) {
    trainer.NotifyNewData();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto served = slot_.WaitNewer(0, absl::Seconds(60));
  ASSERT_NE(served, nullptr);
  EXPECT_EQ(served->info.version(), 1u);
  // Quiet afterwards: no second version appears.
  EXPECT_EQ(slot_.WaitNewer(1, absl::Seconds(1))->info.version(), 1u);
  trainer.Stop();
  EXPECT_EQ(store_->ListModels()->size(), 1u);
}

// Keep the newest 2 plus pinned version 1; the served version is the newest.
TEST_F(TrainerTest, RetentionKeepsTheNewestVersionsAndThePinnedOnes) {
  TrainerOptions options;
  options.keep_model_versions = 2;
  options.pinned_model_versions = {1};
  Trainer trainer(store_.get(), &slot_, options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(trainer.TrainNow().ok());
  std::vector<uint64_t> kept;
  auto listed = store_->ListModels();
  ASSERT_TRUE(listed.ok());
  for (const v1::ModelInfo& m : *listed) kept.push_back(m.version());
  EXPECT_EQ(kept, (std::vector<uint64_t>{5, 4, 1}));
  EXPECT_EQ(slot_.Get()->info.version(), 5u);
}

// Restarting with a smaller retention applies it at once, and the served version stays.
TEST_F(TrainerTest, LoadLatestAppliesTheRetention) {
  {
    Trainer first(store_.get(), &slot_, TrainerOptions());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(first.TrainNow().ok());
  }
  TrainerOptions options;
  options.keep_model_versions = 1;
  ModelSlot slot;
  Trainer trainer(store_.get(), &slot, options);
  ASSERT_TRUE(trainer.LoadLatest().ok());
  ASSERT_EQ(store_->ListModels()->size(), 1u);
  EXPECT_EQ(store_->ListModels()->front().version(), 4u);
}

TEST_F(TrainerTest, UnchangedDataIsNotRetrained) {
  Trainer trainer(store_.get(), &slot_, TrainerOptions());
  auto first = trainer.TrainIfDataChanged();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  // Replays, an identical descriptor report, a label: nothing the model reads changed.
  StoredMeasurement replay;
  replay.id = "ref:0";
  replay.device_id = "ref";
  replay.arch = *core::Nb201Space::Get().ArchitectureAt(0);
  replay.stats.set_median_ms(1.0);
  ASSERT_EQ(store_->AddMeasurements({replay})->already_stored, 1);
  ASSERT_TRUE(store_->UpdateLabels("ref", {{"rack", "3"}}, {}).ok());
  auto second = trainer.TrainIfDataChanged();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->has_value());
  EXPECT_EQ(store_->ListModels()->size(), 1u);
  // A new measurement is new data.
  StoredMeasurement fresh = replay;
  fresh.id = "target:7";
  fresh.device_id = "target";
  fresh.arch = *core::Nb201Space::Get().ArchitectureAt(7);
  ASSERT_EQ(store_->AddMeasurements({fresh})->inserted, 1);
  auto third = trainer.TrainIfDataChanged();
  ASSERT_TRUE(third.ok() && third->has_value());
  EXPECT_EQ((*third)->version(), 2u);
  // So is a changed descriptor.
  v1::ReportDescriptorRequest descriptor;
  descriptor.set_device_id("target");
  descriptor.set_reference_workload_seconds(2.5);
  ASSERT_TRUE(store_->PutDescriptor(descriptor, 1).ok());
  auto fourth = trainer.TrainIfDataChanged();
  ASSERT_TRUE(fourth.ok() && fourth->has_value());
  EXPECT_EQ((*fourth)->version(), 3u);
  // An explicit retrain (the Retrain RPC) always trains.
  EXPECT_EQ(trainer.TrainNow()->version(), 4u);
}

TEST(TrainerEmptyTest, NothingToTrainOnIsAFailedPrecondition) {
  TempDir dir;
  auto store = *Store::Open(dir.File("maplex.db"));
  ModelSlot slot;
  Trainer trainer(store.get(), &slot, TrainerOptions());
  EXPECT_EQ(trainer.TrainNow().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(trainer.LoadLatest().ok());
  EXPECT_EQ(slot.Get(), nullptr);
}

}  // namespace
}  // namespace maplex::server

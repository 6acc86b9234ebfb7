// Keeps the served model current: retrains when new measurements arrive (debounced),
// scores each device's adaptation by cross-validation over its own measurements
// (core/eval/cross_validation.h), persists the model as a new version and swaps it into
// the ModelSlot. Predict never waits for it.
//
//   Trainer trainer(store, slot, options);
//   trainer.LoadLatest();          // serve the last persisted version at once
//   trainer.Start();               // background loop
//   trainer.NotifyNewData();       // after each committed ingest batch
//   trainer.Stop();                // finishes or abandons nothing half-written
#ifndef MAPLEX_SERVER_TRAINER_H_
#define MAPLEX_SERVER_TRAINER_H_

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/eval/cross_validation.h"
#include "core/model/latency_model.h"
#include "maplex/v1/models.pb.h"
#include "server/model_slot.h"
#include "server/store/store.h"

namespace maplex::server {

struct TrainerOptions {
  core::TrainOptions train;
  // Train once no new data arrived for `debounce`, or at the latest `max_delay` after the
  // first unhandled notification, so a steady stream still gets fresh models.
  absl::Duration debounce = absl::Seconds(2);
  absl::Duration max_delay = absl::Seconds(20);
  // The background loop trains at this many nice steps below the server's threads, so
  // Predict keeps its CPU while a model trains (docs/BENCHMARKS.md). Retrain RPCs train on
  // the caller's thread, at normal priority.
  int background_nice = 10;
  // Folds and the cap on scored measurements per device of the cross-validated accuracy
  // (ModelInfo.device_accuracy): at most `folds` refits per target device per retrain.
  core::CrossValidationOptions cross_validation;
};

// The store's view of devices as the core model wants them.
std::vector<core::DeviceData> ToDeviceData(const std::vector<DeviceSamples>& devices);

class Trainer {
 public:
  Trainer(Store* store, ModelSlot* slot, TrainerOptions options);
  ~Trainer();  // Stop()s

  // Serves the newest persisted model version, if any. Its snapshot must load.
  absl::Status LoadLatest();

  void Start();
  // Waits for a training in progress to finish, then ends the loop. Idempotent.
  void Stop();

  // New measurements were committed; a retrain follows after the debounce.
  void NotifyNewData();

  // Trains now on everything stored, persists and serves the result; returns its info.
  // FailedPrecondition when there is nothing to train on.
  absl::StatusOr<maplex::v1::ModelInfo> TrainNow();

 private:
  void Loop();

  Store* const store_;
  ModelSlot* const slot_;
  const TrainerOptions options_;

  std::mutex train_mu_;  // one training at a time (loop or TrainNow)

  std::mutex mu_;
  std::condition_variable wake_;  // new data pending, or stopping
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_pending_ ABSL_GUARDED_BY(mu_);
  absl::Time last_pending_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_TRAINER_H_

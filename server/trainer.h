// Keeps the served model current: retrains when new measurements arrive (debounced),
// scores each device's adaptation by cross-validation over its own measurements
// (core/eval/cross_validation.h), persists the model as a new version and swaps it into
// the ModelSlot. Predict never waits for it.
//
// One version serves every space with data: NB201 with its tabulated model (core
// TrainLatencyModel), every other space (FBNet) with a function model
// (core/model/function_trainer.h) whose trainer is kept across trainings, so that a new
// device's samples cost one target fit. A space that cannot train yet (no reference device)
// is not served by the version and ModelInfo.spaces says why; the others still are.
// Cross-validated accuracy (ModelInfo.device_accuracy) exists for NB201 devices only; other
// spaces' devices are listed "not scored: ..." with the reason.
//
//   Trainer trainer(store, slot, options);
//   trainer.LoadLatest();          // serve the last persisted version at once
//   trainer.Start();               // background loop
//   trainer.NotifyNewData();       // after each committed ingest batch
//   trainer.Stop();                // finishes or abandons nothing half-written
#ifndef MAPLEX_SERVER_TRAINER_H_
#define MAPLEX_SERVER_TRAINER_H_

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/eval/cross_validation.h"
#include "core/model/function_trainer.h"
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
  // Retention (docs/OPERATIONS.md, "Model versions"): after each training the store keeps
  // the newest `keep_model_versions` versions plus the pinned ones and deletes the rest.
  // Pinned: the version being served, and every version in `pinned_model_versions` (an
  // operator's list, e.g. the version a NAS run reported its results against).
  int keep_model_versions = 10;
  std::vector<uint64_t> pinned_model_versions;
};

// The store's NB201 samples (Store::LoadTrainingData(Nb201Space)) as the core NB201 model
// wants them: official indices, ascending. Every architecture must be of nb201.
std::vector<core::DeviceData> ToDeviceData(const std::vector<DeviceSamples>& devices);

// The store's samples of another space (Store::LoadTrainingData(space)) as the function
// trainer wants them (core/model/function_trainer.h), the descriptor as ToDeviceData builds it.
std::vector<core::SpaceDeviceData> ToSpaceDeviceData(const std::vector<DeviceSamples>& devices);

// The stored measurements of every registered space, one entry per space (empty when the
// space has none), in registration order.
struct SpaceTrainingData {
  const core::ArchitectureSpace* space = nullptr;
  std::vector<DeviceSamples> devices;
};

class Trainer {
 public:
  Trainer(Store* store, ModelSlot* slot, TrainerOptions options);
  ~Trainer();  // Stop()s

  // Serves the newest persisted model version, if any. Its snapshot must load.
  absl::Status LoadLatest();

  void Start();
  // Waits for a training in progress to finish, then ends the loop. Idempotent.
  void Stop();

  // New data may have been committed; a retrain follows after the debounce, unless the
  // data the model reads is then the same as at the last training.
  void NotifyNewData();

  // Trains now on everything stored, persists and serves the result; returns its info.
  // FailedPrecondition when there is nothing to train on.
  absl::StatusOr<maplex::v1::ModelInfo> TrainNow();

  // What the background loop does when it is due: trains as TrainNow does, unless what
  // the model reads (each device's id, hardware, spec, counters and per-architecture
  // latencies) is the same as at the last training of this process; then it returns
  // nullopt and stores nothing.
  absl::StatusOr<std::optional<maplex::v1::ModelInfo>> TrainIfDataChanged();

  // Deletes versions beyond the retention (see TrainerOptions) and returns how many.
  absl::StatusOr<int> ApplyRetention();

 private:
  void Loop();
  // Every space's stored training data.
  absl::StatusOr<std::vector<SpaceTrainingData>> LoadAllSpaces();
  // Trains on `stored` (loaded from `start` on) whose digest is `digest`.
  absl::StatusOr<maplex::v1::ModelInfo> TrainOn(std::vector<SpaceTrainingData> stored,
                                                size_t digest, absl::Time start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(train_mu_);
  // The served function model of one space from its training data: the trainer of that
  // space (kept in function_trainers_), the model and the planner.
  absl::StatusOr<ServedFunctionModel> TrainFunctionSpace(const core::ArchitectureSpace& space,
                                                         const std::vector<DeviceSamples>& stored,
                                                         core::TrainedFunctionModel* trained)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(train_mu_);

  Store* const store_;
  ModelSlot* const slot_;
  const TrainerOptions options_;

  std::mutex train_mu_;  // one training at a time (loop or TrainNow)
  // Digest of the data of the last training; unset until one ran in this process.
  std::optional<size_t> trained_digest_ ABSL_GUARDED_BY(train_mu_);
  // One per space other than NB201, kept across trainings: their caches make a retrain
  // after one device's new samples one target fit.
  std::map<std::string, core::FunctionModelTrainer> function_trainers_ ABSL_GUARDED_BY(train_mu_);

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

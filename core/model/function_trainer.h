// Training a served FunctionModel (function_model.h) from the devices' measurements in one
// architecture space: what the server's trainer calls for FBNet (and NB201 as a function).
//
// A device with at least `reference_min_samples` measurements in the space is a reference:
// its own ridge fit, its interval the 0.9 quantile of |log error| on a fifth of its samples
// held out of a second fit. Every other device with samples is a target fit the MAPLE-X way
// (FunctionFitter, the configured Method) against all references; a device without samples
// gets the descriptor-weighted prior. A target's interval half width, and maplex's switches
// (virtual examples, baseline blend), are chosen per sample count the way the evaluation
// chooses them (core/eval/function_evaluation.h, ACCURACY.md): by leaving each reference
// hardware out of the references, fitting its devices from k of their samples and scoring
// the rest, so the served 90 % interval is calibrated on devices it was not fit on.
//
//   FunctionModelTrainer trainer(FbnetSpace::Get(), {});
//   absl::StatusOr<TrainedFunctionModel> t = trainer.Train(devices);   // cold
//   devices[7].samples.push_back(...);
//   t = trainer.Train(devices);   // refits device 7 only: references, pool, calibration cached
//   absl::StatusOr<FunctionModel> model = FunctionModel::Create(t->params);
//
// Wiring into the server (server/trainer.cc): keep one FunctionModelTrainer per space across
// trainings (its caches are what makes a retrain after one device's samples one target fit);
// build SpaceDeviceData from the store's measurements of that space, the descriptor as
// ToDeviceData builds it; serve FunctionModel::Create(params), persist
// SerializeFunctionModel(params); the summaries fill DevicePredictions' reference,
// sample_count, used_spec / used_counters / used_measured_latencies (descriptor_use) and fit.
// NextTasks: FunctionPlanner::Build(trained, the references' architectures) once per model
// (core/planning/function_planner.h).
//
// Deterministic in options.seed: a retrain from the caches gives exactly the model a cold
// train gives. FunctionModelTrainer is thread-compatible (one Train at a time);
// TrainFunctionModel is thread-safe.
#ifndef MAPLEX_CORE_MODEL_FUNCTION_TRAINER_H_
#define MAPLEX_CORE_MODEL_FUNCTION_TRAINER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/arch/architecture_space.h"
#include "core/hardware/descriptor.h"
#include "core/model/function_model.h"
#include "core/model/latency_model.h"

namespace maplex::core {

// Everything known about one device configuration in one space (DeviceData's counterpart
// with Architecture values instead of NB201 indices).
struct SpaceDeviceData {
  std::string device;    // configuration id, unique
  std::string hardware;  // physical hardware; configurations of one piece share it
  HardwareDescriptor descriptor;
  std::vector<FunctionSample> samples;  // of the trainer's space, at most one per architecture
};

struct FunctionTrainOptions {
  Method method = Method::kMapleX;
  uint64_t seed = 1;  // candidate pool and calibration draws
  // A device with at least this many samples in the space is a reference. 1,000 is 5x the
  // coefficients of an FBNet device (199) and 2.5x an NB201 one (406), so a reference's ridge
  // fit is determined by its data; every bundled device (4,000 / 15,625) qualifies, a board
  // adapted from 10-100 samples does not.
  int reference_min_samples = 1000;
  double reference_lambda = 1.0;  // FitReference's ridge penalty
  FunctionConfig config;
  int pool_size = 256;  // connected sampled members (normalization, virtual examples)
  // Calibration: sample counts calibrated (a target with k samples takes the largest one
  // <= k), seeds per inner target, rows scored per inner draw, and at most this many
  // reference hardware left out (spread over the sorted hardware names) with at most
  // `calibration_devices_per_hardware` of their configurations each — a bound, so that
  // calibration costs the same with 20 or 2,000 references.
  std::vector<int> calibration_ks = {0, 1, 2, 3, 5, 10, 20, 50};
  int calibration_seeds = 2;
  int calibration_rows = 300;
  int calibration_max_hardware = 12;
  int calibration_devices_per_hardware = 2;
};

// What an operator sees of one served device (DevicePredictions / DeviceAccuracy's fields).
struct FunctionDeviceSummary {
  std::string device;
  std::string hardware;
  bool reference = false;
  int sample_count = 0;    // samples given (connected or not)
  int samples_fitted = 0;  // the output-connected ones the fit used
  DescriptorUse descriptor_use;
  std::string fit;  // e.g. "maplex from 10 samples, prior of 18 references (...)"
};

struct TrainedFunctionModel {
  FunctionModelParams params;                    // FunctionModel::Create(params) serves it
  std::vector<FunctionDeviceSummary> summaries;  // one per params.devices, same order
};

// What the last Train reused (for tests, logs and the incremental benchmark).
struct FunctionTrainStats {
  int reference_fits = 0;         // references fitted by this call
  int reference_fits_cached = 0;  // reused unchanged
  int target_fits = 0;
  int target_fits_cached = 0;
  int calibrations = 0;  // sample counts calibrated by this call
  bool fitter_cached = false;
};

class FunctionModelTrainer {
 public:
  FunctionModelTrainer(const ArchitectureSpace& space, FunctionTrainOptions options);
  ~FunctionModelTrainer();
  FunctionModelTrainer(FunctionModelTrainer&&) noexcept;
  FunctionModelTrainer& operator=(FunctionModelTrainer&&) noexcept;

  const ArchitectureSpace& space() const { return *space_; }
  const FunctionTrainOptions& options() const { return options_; }

  // A model answering for every device given: references first (sorted by id), then the
  // others (sorted by id). InvalidArgument naming the device (and sample) for an empty or
  // repeated device id, a sample of another space, a repeated architecture, a latency that
  // is not a finite positive number, or when no device has reference_min_samples samples.
  // Reuses what the previous call computed from unchanged inputs: a reference's fit when its
  // samples and descriptor are unchanged; the pool always; the fitter and the calibration
  // while the reference set is unchanged; a target's fit while it and the references are.
  absl::StatusOr<TrainedFunctionModel> Train(const std::vector<SpaceDeviceData>& devices);

  const FunctionTrainStats& last_stats() const { return stats_; }

 private:
  struct Cache;
  const ArchitectureSpace* space_;
  FunctionTrainOptions options_;
  std::unique_ptr<Cache> cache_;
  FunctionTrainStats stats_;
};

// One cold training (a fresh FunctionModelTrainer).
absl::StatusOr<TrainedFunctionModel> TrainFunctionModel(const ArchitectureSpace& space,
                                                        const std::vector<SpaceDeviceData>& devices,
                                                        const FunctionTrainOptions& options);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_FUNCTION_TRAINER_H_

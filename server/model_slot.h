// The model being served: an immutable snapshot swapped atomically by the trainer and read
// by every Predict without waiting for training.
//
//   std::shared_ptr<const ServedModel> m = slot.Get();   // never blocks on training
//   if (m == nullptr) return Unavailable("no model yet");
//   m->model->Predict(...);                              // m stays valid while held
#ifndef MAPLEX_SERVER_MODEL_SLOT_H_
#define MAPLEX_SERVER_MODEL_SLOT_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/time/time.h"
#include "core/model/function_model.h"
#include "core/model/latency_model.h"
#include "core/planning/function_planner.h"
#include "core/planning/measurement_planner.h"
#include "maplex/v1/model.pb.h"
#include "maplex/v1/models.pb.h"

namespace maplex::server {

// The function model of one space other than NB201 (FBNet) and its NextTasks planner.
struct ServedFunctionModel {
  const core::ArchitectureSpace* space = nullptr;
  std::shared_ptr<const core::FunctionModel> model;
  // Primary only (a replica plans nothing); built from the references' measured
  // architectures.
  std::shared_ptr<const core::FunctionPlanner> planner;
};

struct ServedModel {
  // NB201's model; null when this version serves no NB201 (no reference device yet).
  std::shared_ptr<const core::LatencyModel> model;
  // One per other space this version serves (no entry: the space is not served; the reason
  // is in info.spaces).
  std::vector<ServedFunctionModel> function_models;
  maplex::v1::ModelInfo info;          // info.version identifies it
  maplex::v1::ModelSnapshot snapshot;  // what replicas receive
  // Built from the same training data; null when no device covers the whole space.
  std::shared_ptr<const core::MeasurementPlanner> planner;

  // The function model serving `space`, or null.
  const ServedFunctionModel* FunctionModelOf(const core::ArchitectureSpace& space) const {
    for (const ServedFunctionModel& f : function_models) {
      if (f.space == &space) return &f;
    }
    return nullptr;
  }
};

class ModelSlot {
 public:
  // The model being served, or nullptr before the first one. Never waits for training.
  std::shared_ptr<const ServedModel> Get() const { return std::atomic_load(&current_); }

  // Serves `model` from now on and wakes WaitNewer callers.
  void Set(std::shared_ptr<const ServedModel> model) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::atomic_store(&current_, std::move(model));
    }
    served_.notify_all();
  }

  // Waits until a model with version > `version` is served or `timeout` passes; returns
  // the model being served then (maybe still the old one, or nullptr).
  std::shared_ptr<const ServedModel> WaitNewer(uint64_t version, absl::Duration timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    served_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this, version] {
      return current_ != nullptr && current_->info.version() > version;
    });
    return current_;
  }

 private:
  // Only Set and WaitNewer take it; Get does not.
  mutable std::mutex mu_;
  mutable std::condition_variable served_;
  std::shared_ptr<const ServedModel> current_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_MODEL_SLOT_H_

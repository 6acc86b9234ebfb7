#include "server/trainer.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "core/arch/space_registry.h"
#include "core/eval/cross_validation.h"
#include "core/hardware/spec_proto.h"
#include "core/model/reference_set.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "platform/log.h"
#include "platform/process.h"
#include "server/served_model.h"

namespace maplex::server {
namespace {

// Cross-validated accuracy per device under the method `model` was trained with (the
// fallback may have replaced the configured one); see v1::DeviceAccuracy.
// A scoring failure leaves the model servable: every device is then "not scored" with the
// reason.
std::vector<v1::DeviceAccuracy> ScoreCrossValidated(const core::LatencyModel& model,
                                                    const std::vector<core::DeviceData>& devices,
                                                    core::TrainOptions train,
                                                    const core::CrossValidationOptions& options) {
  train.method = model.method();
  absl::StatusOr<std::vector<core::DeviceCrossValidation>> scores =
      core::CrossValidateDevices(devices, train, options);
  if (!scores.ok()) {
    const absl::Status error = scores.status();
    LogWarning("cross_validation_failed", {{"error", error.ToString()}});
    scores.emplace();
    for (const core::DeviceData& d : devices) {
      core::DeviceCrossValidation& u = scores->emplace_back();
      u.device = d.device;
      u.samples = static_cast<int>(d.samples.size());
      u.reference = core::Coverage(d, core::Nb201Space::Get().size()) >=
                    train.reference_min_coverage;
      u.not_scored = absl::StrCat("cross-validation failed: ", error.message());
    }
  }
  std::vector<v1::DeviceAccuracy> out;
  for (const core::DeviceCrossValidation& d : *scores) {
    v1::DeviceAccuracy& a = out.emplace_back();
    a.set_device_id(d.device);
    a.set_samples(d.samples);
    a.set_reference(d.reference);
    if (!d.cv.has_value()) {
      a.set_basis(d.reference ? "not scored: reference device"
                              : absl::StrCat("not scored: ", d.not_scored));
      continue;
    }
    a.set_basis("cross-validated");
    a.set_folds(d.cv->folds);
    a.set_scored(static_cast<int64_t>(d.cv->held_out.size()));
    a.set_spearman(d.cv->metrics.spearman);
    a.set_acc10(d.cv->metrics.acc10);
    a.set_mape(100 * d.cv->metrics.mape);  // the wire form is percent
    a.set_coverage90(d.cv->metrics.coverage90);
  }
  return out;
}

// The planner for NextTasks, or null when no device covers the whole space yet.
std::shared_ptr<const core::MeasurementPlanner> BuildPlanner(
    const std::vector<core::DeviceData>& devices) {
  absl::StatusOr<core::MeasurementPlanner> planner =
      core::MeasurementPlanner::Build(devices, core::Nb201Space::Get());
  if (!planner.ok()) return nullptr;
  return std::make_shared<const core::MeasurementPlanner>(*std::move(planner));
}

// The planner of a function-model space: the served references plus the architectures the
// references measured (candidates worth asking a new device about).
absl::StatusOr<std::shared_ptr<const core::FunctionPlanner>> BuildFunctionPlanner(
    const core::TrainedFunctionModel& trained, const std::vector<DeviceSamples>& stored) {
  std::set<std::string> references;
  for (const core::FunctionDeviceSummary& s : trained.summaries) {
    if (s.reference) references.insert(s.device);
  }
  std::vector<core::Architecture> measured;
  for (const DeviceSamples& d : stored) {
    if (references.count(d.device.id()) == 0) continue;
    for (const auto& [arch, ms] : d.latency_ms) measured.push_back(arch);
  }
  absl::StatusOr<core::FunctionPlanner> planner =
      core::FunctionPlanner::Build(trained, std::move(measured));
  if (!planner.ok()) return planner.status();
  return std::make_shared<const core::FunctionPlanner>(*std::move(planner));
}

// A digest of what the model reads from `devices` (ToDeviceData's inputs); labels,
// retirement times and receipt times do not enter it.
size_t TrainingDataDigest(const std::vector<SpaceTrainingData>& spaces) {
  std::string bytes;
  for (const SpaceTrainingData& space : spaces) {
    bytes.append("space:").append(space.space->name()).append("\n");
    for (const DeviceSamples& d : space.devices) {
      absl::StrAppend(&bytes, d.device.id(), "\n", d.device.hardware_fingerprint(), "\n");
      // Deterministic serialization: equal messages give equal bytes within one binary.
      auto append_message = [&bytes](const google::protobuf::MessageLite& m) {
        std::string out;
        google::protobuf::io::StringOutputStream stream(&out);
        google::protobuf::io::CodedOutputStream coded(&stream);
        coded.SetSerializationDeterministic(true);
        m.SerializeToCodedStream(&coded);
        coded.Trim();
        absl::StrAppend(&bytes, out.size(), ":", out);
      };
      append_message(d.device.spec());
      append_message(d.device.config());
      if (d.descriptor.has_value()) {
        v1::ReportDescriptorRequest read;  // only the fields ToDeviceData reads
        *read.mutable_counters() = d.descriptor->counters();
        read.set_reference_workload_seconds(d.descriptor->reference_workload_seconds());
        append_message(read);
      }
      // Field by field: a pair's padding bytes are indeterminate.
      for (const auto& [arch, ms] : d.latency_ms) {
        const absl::Span<const uint8_t> choices = arch.choices();
        bytes.append(reinterpret_cast<const char*>(choices.data()), choices.size());
        bytes.append(reinterpret_cast<const char*>(&ms), sizeof(ms));
      }
    }
  }
  return absl::HashOf(bytes);
}

}  // namespace

namespace {

core::HardwareDescriptor DescriptorOf(const DeviceSamples& d) {
  core::HardwareDescriptor out;
  out.spec = core::SpecFromProto(d.device.spec(), d.device.config());
  if (d.descriptor.has_value()) {
    for (const v1::CounterValue& v : d.descriptor->counters()) {
      out.counters.push_back({v.name(), v.available(), v.value(), v.unavailable_reason()});
    }
    out.reference_workload_seconds = d.descriptor->reference_workload_seconds();
  }
  return out;
}

}  // namespace

std::vector<core::SpaceDeviceData> ToSpaceDeviceData(const std::vector<DeviceSamples>& devices) {
  std::vector<core::SpaceDeviceData> out;
  out.reserve(devices.size());
  for (const DeviceSamples& d : devices) {
    core::SpaceDeviceData& c = out.emplace_back();
    c.device = d.device.id();
    c.hardware = d.device.hardware_fingerprint();
    c.descriptor = DescriptorOf(d);
    c.samples.reserve(d.latency_ms.size());
    for (const auto& [arch, ms] : d.latency_ms) c.samples.push_back({arch, ms});
  }
  return out;
}

std::vector<core::DeviceData> ToDeviceData(const std::vector<DeviceSamples>& devices) {
  std::vector<core::DeviceData> out;
  out.reserve(devices.size());
  for (const DeviceSamples& d : devices) {
    core::DeviceData& c = out.emplace_back();
    c.device = d.device.id();
    c.hardware = d.device.hardware_fingerprint();
    c.descriptor = DescriptorOf(d);
    // The NB201 model reads official indices, in index order (the store orders by string).
    const core::Nb201Space& nb201 = core::Nb201Space::Get();
    c.samples.reserve(d.latency_ms.size());
    for (const auto& [arch, ms] : d.latency_ms) c.samples.push_back({nb201.IndexOf(arch), ms});
    std::sort(c.samples.begin(), c.samples.end(),
              [](const core::LatencySample& a, const core::LatencySample& b) {
                return a.arch_index < b.arch_index;
              });
  }
  return out;
}

Trainer::Trainer(Store* store, ModelSlot* slot, TrainerOptions options)
    : store_(store), slot_(slot), options_(std::move(options)) {}

Trainer::~Trainer() { Stop(); }

absl::Status Trainer::LoadLatest() {
  absl::StatusOr<std::optional<Store::StoredModel>> stored = store_->LatestModel();
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<ServedModel>> served =
      LoadServedModel((*stored)->snapshot, (*stored)->info);
  if (!served.ok()) return served.status();
  if ((*served)->model != nullptr) {
    absl::StatusOr<std::vector<DeviceSamples>> data =
        store_->LoadTrainingData(core::Nb201Space::Get());
    if (!data.ok()) return data.status();
    (*served)->planner = BuildPlanner(ToDeviceData(*data));
  }
  // The planners of the other spaces, from the stored parameters and what the references
  // measured (the planner is not part of the snapshot: replicas plan nothing).
  for (ServedFunctionModel& f : (*served)->function_models) {
    const v1::SpaceModel* stored_space = nullptr;
    for (const v1::SpaceModel& m : (*stored)->snapshot.function_models()) {
      if (m.space() == f.space->name()) stored_space = &m;
    }
    if (stored_space == nullptr) continue;  // LoadServedModel built f from one of them
    absl::StatusOr<core::TrainedFunctionModel> trained = FromSpaceModel(*stored_space);
    if (!trained.ok()) return trained.status();
    absl::StatusOr<std::vector<DeviceSamples>> data = store_->LoadTrainingData(*f.space);
    if (!data.ok()) return data.status();
    absl::StatusOr<std::shared_ptr<const core::FunctionPlanner>> planner =
        BuildFunctionPlanner(*trained, *data);
    if (!planner.ok()) return planner.status();
    f.planner = *std::move(planner);
  }
  slot_->Set(*std::move(served));
  // A smaller --keep_model_versions takes effect at start, not only after the next training.
  if (absl::StatusOr<int> deleted = ApplyRetention(); !deleted.ok()) {
    LogWarning("model_retention_failed", {{"error", deleted.status().ToString()}});
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Trainer::ApplyRetention() {
  std::vector<uint64_t> pinned = options_.pinned_model_versions;
  if (std::shared_ptr<const ServedModel> served = slot_->Get()) {
    pinned.push_back(served->info.version());
  }
  // At least the newest version stays: it is what a restart serves.
  absl::StatusOr<int> deleted =
      store_->DeleteOldModels(std::max(options_.keep_model_versions, 1), pinned);
  if (deleted.ok() && *deleted > 0) {
    LogInfo("model_versions_deleted", {{"count", absl::StrCat(*deleted)},
                                       {"keep", absl::StrCat(options_.keep_model_versions)}});
  }
  return deleted;
}

void Trainer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void Trainer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Trainer::NotifyNewData() {
  bool was_pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time now = absl::Now();
    was_pending = pending_;
    if (!pending_) first_pending_ = now;
    pending_ = true;
    last_pending_ = now;
  }
  // Later data only moves the due time later; the loop re-reads it when it wakes.
  if (!was_pending) wake_.notify_all();
}

void Trainer::Loop() {
  if (options_.background_nice > 0 && !LowerThreadPriority(options_.background_nice)) {
    LogWarning("trainer_priority_unchanged", {{"nice_steps", absl::StrCat(options_.background_nice)}});
  }
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_) {
        if (!pending_) {
          wake_.wait(lock);
          continue;
        }
        const absl::Time due = std::min(last_pending_ + options_.debounce,
                                        first_pending_ + options_.max_delay);
        const absl::Time now = absl::Now();
        if (now >= due) break;
        wake_.wait_for(lock, absl::ToChronoNanoseconds(due - now));
      }
      if (stopping_) return;
      pending_ = false;
    }
    // A failed training keeps the previous model serving; the next data retries.
    absl::StatusOr<std::optional<v1::ModelInfo>> info = TrainIfDataChanged();
    if (!info.ok()) LogWarning("training_failed", {{"error", info.status().ToString()}});
  }
}

absl::StatusOr<std::vector<SpaceTrainingData>> Trainer::LoadAllSpaces() {
  // NB201 first: TrainOn trains it with its tabulated model, the others as functions.
  std::vector<const core::ArchitectureSpace*> spaces = {&core::Nb201Space::Get()};
  for (std::string_view name : core::SpaceNames()) {
    const core::ArchitectureSpace* space = core::FindSpace(name);
    if (space != spaces.front()) spaces.push_back(space);
  }
  std::vector<SpaceTrainingData> out;
  for (const core::ArchitectureSpace* space : spaces) {
    absl::StatusOr<std::vector<DeviceSamples>> stored = store_->LoadTrainingData(*space);
    if (!stored.ok()) return stored.status();
    out.push_back({space, *std::move(stored)});
  }
  return out;
}

absl::StatusOr<v1::ModelInfo> Trainer::TrainNow() {
  std::lock_guard<std::mutex> train_lock(train_mu_);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<SpaceTrainingData>> stored = LoadAllSpaces();
  if (!stored.ok()) return stored.status();
  const size_t digest = TrainingDataDigest(*stored);
  return TrainOn(*std::move(stored), digest, start);
}

absl::StatusOr<std::optional<v1::ModelInfo>> Trainer::TrainIfDataChanged() {
  std::lock_guard<std::mutex> train_lock(train_mu_);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<SpaceTrainingData>> stored = LoadAllSpaces();
  if (!stored.ok()) return stored.status();
  const size_t digest = TrainingDataDigest(*stored);
  if (trained_digest_ == digest) {
    LogInfo("training_skipped", {{"reason", "the data the model reads is unchanged"}});
    return std::nullopt;
  }
  absl::StatusOr<v1::ModelInfo> info = TrainOn(*std::move(stored), digest, start);
  if (!info.ok()) return info.status();
  return *std::move(info);
}

absl::StatusOr<ServedFunctionModel> Trainer::TrainFunctionSpace(
    const core::ArchitectureSpace& space, const std::vector<DeviceSamples>& stored,
    core::TrainedFunctionModel* trained) {
  const std::string name(space.name());
  auto it = function_trainers_.find(name);
  if (it == function_trainers_.end()) {
    core::FunctionTrainOptions options;
    options.method = options_.train.method;
    options.seed = options_.train.seed;
    it = function_trainers_.emplace(name, core::FunctionModelTrainer(space, options)).first;
  }
  absl::StatusOr<core::TrainedFunctionModel> t = it->second.Train(ToSpaceDeviceData(stored));
  if (!t.ok()) return t.status();
  absl::StatusOr<core::FunctionModel> model = core::FunctionModel::Create(t->params);
  if (!model.ok()) return model.status();
  ServedFunctionModel served;
  served.space = &space;
  served.model = std::make_shared<const core::FunctionModel>(*std::move(model));
  absl::StatusOr<std::shared_ptr<const core::FunctionPlanner>> planner =
      BuildFunctionPlanner(*t, stored);
  if (!planner.ok()) return planner.status();
  served.planner = *std::move(planner);
  const core::FunctionTrainStats& stats = it->second.last_stats();
  LogInfo("function_model_trained",
          {{"space", name},
           {"devices", absl::StrCat(t->params.devices.size())},
           {"reference_fits", absl::StrCat(stats.reference_fits)},
           {"reference_fits_cached", absl::StrCat(stats.reference_fits_cached)},
           {"target_fits", absl::StrCat(stats.target_fits)},
           {"target_fits_cached", absl::StrCat(stats.target_fits_cached)},
           {"calibrations", absl::StrCat(stats.calibrations)}});
  *trained = *std::move(t);
  return served;
}

absl::StatusOr<v1::ModelInfo> Trainer::TrainOn(std::vector<SpaceTrainingData> stored, size_t digest,
                                               absl::Time start) {
  // Seconds of each phase, for the log line of the served model.
  absl::Time phase_start = start;
  auto lap = [&phase_start] {
    const absl::Time now = absl::Now();
    const double seconds = absl::ToDoubleSeconds(now - phase_start);
    phase_start = now;
    return absl::StrFormat("%.4f", seconds);
  };
  LogInfo("training_started");
  bool any_data = false;
  for (const SpaceTrainingData& s : stored) any_data = any_data || !s.devices.empty();
  if (!any_data) return absl::FailedPreconditionError("no measurements to train on");

  auto served = std::make_shared<ServedModel>();
  v1::ModelInfo& info = served->info;
  absl::Status first_error;  // of a space that had data but could not train
  int64_t measurements = 0;
  std::set<std::string> devices_served;
  std::string fit_s, score_s;

  // NB201: the tabulated model, with the baseline as fallback, and cross-validated accuracy.
  std::vector<core::DeviceData> devices = ToDeviceData(stored.front().devices);
  const std::string load_s = lap();
  if (!devices.empty()) {
    v1::SpaceModelInfo& space_info = *info.add_spaces();
    space_info.set_space(std::string(core::Nb201Space::Get().name()));
    space_info.set_kind("tabulated");
    absl::StatusOr<std::unique_ptr<core::LatencyModel>> model =
        core::TrainLatencyModel(devices, options_.train);
    if (absl::IsFailedPrecondition(model.status()) &&
        options_.train.method != core::Method::kBaseline) {
      // Too little data for the chosen method (e.g. MAPLE-X wants two reference devices):
      // serve the reference baseline until there is more, rather than nothing.
      LogWarning("training_fallback", {{"method", core::MethodName(options_.train.method)},
                                       {"reason", std::string(model.status().message())}});
      core::TrainOptions baseline = options_.train;
      baseline.method = core::Method::kBaseline;
      model = core::TrainLatencyModel(devices, baseline);
    }
    fit_s = lap();
    int64_t space_measurements = 0;
    for (const core::DeviceData& d : devices) {
      space_measurements += static_cast<int64_t>(d.samples.size());
    }
    space_info.set_measurements(space_measurements);
    if (model.ok()) {
      served->snapshot = (*model)->ToProto();
      space_info.set_served(true);
      space_info.set_method(core::MethodName((*model)->method()));
      info.set_method(core::MethodName((*model)->method()));
      measurements += space_measurements;
      for (const core::DeviceData& d : devices) devices_served.insert(d.device);
      int references = 0;
      for (v1::DeviceAccuracy& a :
           ScoreCrossValidated(**model, devices, options_.train, options_.cross_validation)) {
        references += a.reference() ? 1 : 0;
        a.set_space(std::string(core::Nb201Space::Get().name()));
        *info.add_device_accuracy() = std::move(a);
      }
      space_info.set_references(references);
      space_info.set_targets(static_cast<int32_t>(devices.size()) - references);
      served->model = *std::move(model);
      served->planner = BuildPlanner(devices);
    } else {
      space_info.set_reason(std::string(model.status().message()));
      LogWarning("space_not_served",
                 {{"space", space_info.space()}, {"reason", space_info.reason()}});
      first_error = model.status();
    }
    score_s = lap();
  }

  // Every other space: its function model.
  for (size_t i = 1; i < stored.size(); ++i) {
    const core::ArchitectureSpace& space = *stored[i].space;
    if (stored[i].devices.empty()) continue;
    v1::SpaceModelInfo& space_info = *info.add_spaces();
    space_info.set_space(std::string(space.name()));
    space_info.set_kind("function");
    int64_t space_measurements = 0;
    for (const DeviceSamples& d : stored[i].devices) {
      space_measurements += static_cast<int64_t>(d.latency_ms.size());
    }
    space_info.set_measurements(space_measurements);
    core::TrainedFunctionModel trained;
    absl::StatusOr<ServedFunctionModel> function =
        TrainFunctionSpace(space, stored[i].devices, &trained);
    if (!function.ok()) {
      space_info.set_reason(std::string(function.status().message()));
      LogWarning("space_not_served",
                 {{"space", space_info.space()}, {"reason", space_info.reason()}});
      if (first_error.ok()) first_error = function.status();
      continue;
    }
    space_info.set_served(true);
    space_info.set_method(core::MethodName(options_.train.method));
    if (info.method().empty()) info.set_method(space_info.method());
    measurements += space_measurements;
    int references = 0;
    for (const core::FunctionDeviceSummary& d : trained.summaries) {
      references += d.reference ? 1 : 0;
      devices_served.insert(d.device);
      v1::DeviceAccuracy& a = *info.add_device_accuracy();
      a.set_device_id(d.device);
      a.set_samples(d.sample_count);
      a.set_reference(d.reference);
      a.set_space(space_info.space());
      // core/eval/cross_validation refits NB201's tabulated model only; a function-model
      // device's accuracy comes from maplex-eval's offline protocol (ACCURACY.md).
      a.set_basis(d.reference ? "not scored: reference device"
                              : absl::StrCat("not scored: cross-validation covers nb201 only; ",
                                             space_info.space(),
                                             " is scored offline (maplex-eval, ACCURACY.md)"));
    }
    space_info.set_references(references);
    space_info.set_targets(static_cast<int32_t>(trained.summaries.size()) - references);
    *served->snapshot.add_function_models() = ToSpaceModel(trained, options_.train.method);
    served->function_models.push_back(*std::move(function));
  }
  const std::string function_s = lap();
  if (served->model == nullptr && served->function_models.empty()) return first_error;

  info.set_created_at_unix_ms(absl::ToUnixMillis(absl::Now()));
  info.set_training_measurements(measurements);
  info.set_training_devices(static_cast<int32_t>(devices_served.size()));
  info.set_train_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  // Retention in the same commit: the pinned versions, and the one served until this one
  // takes its place (the new version is the newest, so it is kept).
  std::vector<uint64_t> pinned = options_.pinned_model_versions;
  if (std::shared_ptr<const ServedModel> current = slot_->Get()) {
    pinned.push_back(current->info.version());
  }
  absl::StatusOr<uint64_t> version =
      store_->AddModel(info, served->snapshot, std::max(options_.keep_model_versions, 1), pinned);
  if (!version.ok()) return version.status();
  const std::string persist_s = lap();
  info.set_version(*version);
  info.set_serving(true);
  v1::ModelInfo result = info;
  slot_->Set(std::move(served));
  trained_digest_ = digest;
  LogInfo("model_served", {{"version", absl::StrCat(result.version())},
                           {"method", result.method()},
                           {"devices", absl::StrCat(result.training_devices())},
                           {"measurements", absl::StrCat(result.training_measurements())},
                           {"train_seconds", absl::StrCat(result.train_seconds())},
                           {"load_s", load_s},
                           {"fit_s", fit_s},
                           {"score_s", score_s},
                           {"function_s", function_s},
                           {"persist_s", persist_s}});
  return result;
}

}  // namespace maplex::server

#include "server/trainer.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/arch/nb201_space.h"
#include "core/eval/cross_validation.h"
#include "core/hardware/spec_proto.h"
#include "core/model/reference_set.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "platform/log.h"
#include "platform/process.h"

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

// A digest of what the model reads from `devices` (ToDeviceData's inputs); labels,
// retirement times and receipt times do not enter it.
size_t TrainingDataDigest(const std::vector<DeviceSamples>& devices) {
  std::string bytes;
  for (const DeviceSamples& d : devices) {
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
  return absl::HashOf(bytes);
}

}  // namespace

std::vector<core::DeviceData> ToDeviceData(const std::vector<DeviceSamples>& devices) {
  std::vector<core::DeviceData> out;
  out.reserve(devices.size());
  for (const DeviceSamples& d : devices) {
    core::DeviceData& c = out.emplace_back();
    c.device = d.device.id();
    c.hardware = d.device.hardware_fingerprint();
    c.descriptor.spec = core::SpecFromProto(d.device.spec(), d.device.config());
    if (d.descriptor.has_value()) {
      for (const v1::CounterValue& v : d.descriptor->counters()) {
        c.descriptor.counters.push_back(
            {v.name(), v.available(), v.value(), v.unavailable_reason()});
      }
      c.descriptor.reference_workload_seconds = d.descriptor->reference_workload_seconds();
    }
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
  absl::StatusOr<std::unique_ptr<core::LatencyModel>> model =
      core::LoadLatencyModel((*stored)->snapshot);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat("model version ", (*stored)->info.version(),
                                     " does not load: ", model.status().message()));
  }
  absl::StatusOr<std::vector<DeviceSamples>> data =
      store_->LoadTrainingData(core::Nb201Space::Get());
  if (!data.ok()) return data.status();
  auto served = std::make_shared<ServedModel>();
  served->planner = BuildPlanner(ToDeviceData(*data));
  served->model = *std::move(model);
  served->info = std::move((*stored)->info);
  served->info.set_serving(true);
  served->snapshot = std::move((*stored)->snapshot);
  slot_->Set(std::move(served));
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

absl::StatusOr<v1::ModelInfo> Trainer::TrainNow() {
  std::lock_guard<std::mutex> train_lock(train_mu_);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<DeviceSamples>> stored =
      store_->LoadTrainingData(core::Nb201Space::Get());
  if (!stored.ok()) return stored.status();
  const size_t digest = TrainingDataDigest(*stored);
  return TrainOn(*std::move(stored), digest, start);
}

absl::StatusOr<std::optional<v1::ModelInfo>> Trainer::TrainIfDataChanged() {
  std::lock_guard<std::mutex> train_lock(train_mu_);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<DeviceSamples>> stored =
      store_->LoadTrainingData(core::Nb201Space::Get());
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

absl::StatusOr<v1::ModelInfo> Trainer::TrainOn(std::vector<DeviceSamples> stored_data,
                                               size_t digest, absl::Time start) {
  absl::StatusOr<std::vector<DeviceSamples>> stored = std::move(stored_data);
  // Seconds of each phase, for the log line of the served model.
  absl::Time phase_start = start;
  auto lap = [&phase_start] {
    const absl::Time now = absl::Now();
    const double seconds = absl::ToDoubleSeconds(now - phase_start);
    phase_start = now;
    return absl::StrFormat("%.4f", seconds);
  };
  LogInfo("training_started");
  std::vector<core::DeviceData> devices = ToDeviceData(*stored);
  if (devices.empty()) return absl::FailedPreconditionError("no measurements to train on");
  const std::string load_s = lap();
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
  if (!model.ok()) return model.status();
  const std::string fit_s = lap();

  auto served = std::make_shared<ServedModel>();
  served->snapshot = (*model)->ToProto();
  const std::string snapshot_s = lap();
  v1::ModelInfo& info = served->info;
  info.set_method(core::MethodName((*model)->method()));
  info.set_created_at_unix_ms(absl::ToUnixMillis(absl::Now()));
  int64_t measurements = 0;
  for (const core::DeviceData& d : devices) measurements += static_cast<int64_t>(d.samples.size());
  info.set_training_measurements(measurements);
  info.set_training_devices(static_cast<int32_t>(devices.size()));
  for (v1::DeviceAccuracy& a :
       ScoreCrossValidated(**model, devices, options_.train, options_.cross_validation)) {
    *info.add_device_accuracy() = std::move(a);
  }
  const std::string score_s = lap();
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
  served->model = *std::move(model);
  served->planner = BuildPlanner(devices);
  const std::string planner_s = lap();
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
                           {"snapshot_s", snapshot_s},
                           {"score_s", score_s},
                           {"persist_s", persist_s},
                           {"planner_s", planner_s}});
  return result;
}

}  // namespace maplex::server

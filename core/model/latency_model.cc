#include "core/model/latency_model.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "core/model/tabulated_model.h"
#include "core/model/trainer.h"

namespace maplex::core {
namespace {

constexpr Method kMethods[] = {Method::kBaseline, Method::kMaple, Method::kMapleVirtualExamples,
                               Method::kMapleWeights, Method::kMapleX};

}  // namespace

const char* MethodName(Method method) {
  switch (method) {
    case Method::kBaseline:
      return "baseline";
    case Method::kMaple:
      return "maple";
    case Method::kMapleVirtualExamples:
      return "maple+ve";
    case Method::kMapleWeights:
      return "maple+w";
    case Method::kMapleX:
      return "maplex";
  }
  return "unknown";
}

absl::StatusOr<Method> ParseMethod(std::string_view name) {
  for (Method m : kMethods) {
    if (name == MethodName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown method \"", std::string(name), "\" (baseline, maple, maple+ve, maple+w, maplex)"));
}

absl::StatusOr<std::unique_ptr<LatencyModel>> TrainLatencyModel(
    const std::vector<DeviceData>& devices, const TrainOptions& options) {
  const int32_t space_size = Nb201Space::Get().size();
  if (absl::Status s = ValidateDevices(devices, space_size); !s.ok()) return s;
  std::vector<const DeviceData*> references;
  for (const DeviceData& d : devices) {
    if (Coverage(d, space_size) >= options.reference_min_coverage) references.push_back(&d);
  }
  if (references.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no device covers ", options.reference_min_coverage,
                     " of the architecture space, so none can serve as a reference device"));
  }
  absl::StatusOr<std::unique_ptr<ModelTrainer>> trainer =
      ModelTrainer::Create(references, options.seed);
  if (!trainer.ok()) return trainer.status();

  std::vector<DeviceTable> tables;
  for (const DeviceData& d : devices) {
    // Reference devices are fit like targets, with all their samples (baseline then
    // reproduces them exactly); targets are adapted from their own k samples, and the
    // other targets on their hardware.
    std::vector<const DeviceData*> same_hardware;
    for (const DeviceData& o : devices) {
      if (&o != &d && !d.hardware.empty() && o.hardware == d.hardware &&
          Coverage(o, space_size) < options.reference_min_coverage) {
        same_hardware.push_back(&o);
      }
    }
    absl::StatusOr<DeviceTable> table = (*trainer)->Fit(d, options.method, nullptr, same_hardware);
    if (!table.ok()) return table.status();
    table->reference = Coverage(d, space_size) >= options.reference_min_coverage;
    // Where the device measured an arch, the served prediction is the measurement (ours:
    // the model is for what was not measured); the interval stays the model's.
    for (const LatencySample& s : d.samples)
      table->log_latency[s.arch_index] = std::log(s.latency_ms);
    tables.push_back(*std::move(table));
  }
  return MakeTabulatedModel(options.method, options.seed, std::move(tables));
}

absl::StatusOr<std::unique_ptr<LatencyModel>> LoadLatencyModel(
    const maplex::v1::ModelSnapshot& snapshot) {
  if (snapshot.format_version() != kModelFormatVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("model snapshot format_version ", snapshot.format_version(),
                     " is not supported (this build reads ", kModelFormatVersion, ")"));
  }
  absl::StatusOr<Method> method = ParseMethod(snapshot.method());
  if (!method.ok()) return method.status();
  const Nb201Space& space = Nb201Space::Get();
  // Snapshots written before the space registry name the space "nasbench201".
  if ((snapshot.space() != space.name() && snapshot.space() != "nasbench201") ||
      snapshot.space_size() != space.size()) {
    return absl::InvalidArgumentError(absl::StrCat("model snapshot is for space \"",
                                                   snapshot.space(), "\" of ",
                                                   snapshot.space_size(), " architectures"));
  }
  std::vector<DeviceTable> tables;
  for (const maplex::v1::DevicePredictions& d : snapshot.devices()) {
    DeviceTable t;
    t.device = d.device();
    t.hardware = d.hardware();
    t.use.spec = d.used_spec();
    t.use.counters = d.used_counters();
    t.use.measured_latencies = d.used_measured_latencies();
    t.reference = d.reference();
    t.sample_count = d.sample_count();
    t.fit = d.fit();
    t.log_latency.assign(d.log_latency().begin(), d.log_latency().end());
    t.log_half_width.assign(d.log_half_width().begin(), d.log_half_width().end());
    tables.push_back(std::move(t));
  }
  return MakeTabulatedModel(*method, snapshot.seed(), std::move(tables));
}

}  // namespace maplex::core

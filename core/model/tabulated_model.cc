#include "core/model/tabulated_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"

namespace maplex::core {
namespace {

class TabulatedLatencyModel final : public LatencyModel {
 public:
  TabulatedLatencyModel(Method method, uint64_t seed, std::vector<DeviceTable> tables)
      : method_(method), seed_(seed), tables_(std::move(tables)) {
    std::sort(tables_.begin(), tables_.end(),
              [](const DeviceTable& a, const DeviceTable& b) { return a.device < b.device; });
    predictions_.resize(tables_.size());
    for (size_t t = 0; t < tables_.size(); ++t) {
      index_[tables_[t].device] = t;
      const DeviceTable& table = tables_[t];
      predictions_[t].resize(table.log_latency.size());
      for (size_t a = 0; a < table.log_latency.size(); ++a) {
        predictions_[t][a] = PredictionFromLog(table.log_latency[a], table.log_half_width[a]);
      }
    }
  }

  Method method() const override { return method_; }

  std::vector<std::string> devices() const override {
    std::vector<std::string> names;
    for (const DeviceTable& t : tables_) names.push_back(t.device);
    return names;
  }

  absl::StatusOr<DescriptorUse> descriptor_use(std::string_view device) const override {
    auto it = index_.find(absl::string_view(device.data(), device.size()));
    if (it == index_.end()) return UnknownDevice(device);
    return tables_[it->second].use;
  }

  absl::Status Predict(std::string_view device, absl::Span<const int32_t> archs,
                       absl::Span<LatencyPrediction> out) const override {
    auto it = index_.find(absl::string_view(device.data(), device.size()));
    if (it == index_.end()) return UnknownDevice(device);
    if (out.size() != archs.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Predict: ", archs.size(), " archs but room for ", out.size()));
    }
    const std::vector<LatencyPrediction>& table = predictions_[it->second];
    const int32_t size = static_cast<int32_t>(table.size());
    // Validate everything first so that nothing is written on failure.
    for (size_t i = 0; i < archs.size(); ++i) {
      if (archs[i] < 0 || archs[i] >= size) {
        return absl::InvalidArgumentError(
            absl::StrCat("arch index ", archs[i], " (position ", i, ") outside [0, ", size, ")"));
      }
    }
    for (size_t i = 0; i < archs.size(); ++i) out[i] = table[archs[i]];
    return absl::OkStatus();
  }

  maplex::v1::ModelSnapshot ToProto() const override {
    maplex::v1::ModelSnapshot s;
    s.set_format_version(kModelFormatVersion);
    s.set_method(MethodName(method_));
    s.set_space(std::string(Nb201Space::Get().name()));
    s.set_space_size(Nb201Space::Get().size());
    s.set_seed(seed_);
    for (const DeviceTable& t : tables_) {
      maplex::v1::DevicePredictions* d = s.add_devices();
      d->set_device(t.device);
      d->set_hardware(t.hardware);
      d->set_used_spec(t.use.spec);
      d->set_used_counters(t.use.counters);
      d->set_used_measured_latencies(t.use.measured_latencies);
      d->set_reference(t.reference);
      d->set_sample_count(t.sample_count);
      d->set_fit(t.fit);
      *d->mutable_log_latency() = {t.log_latency.begin(), t.log_latency.end()};
      *d->mutable_log_half_width() = {t.log_half_width.begin(), t.log_half_width.end()};
    }
    return s;
  }

 private:
  static absl::Status UnknownDevice(std::string_view device) {
    return absl::NotFoundError(absl::StrCat("model has no device \"", std::string(device), "\""));
  }

  const Method method_;
  const uint64_t seed_;
  std::vector<DeviceTable> tables_;  // sorted by device
  std::vector<std::vector<LatencyPrediction>> predictions_;
  absl::flat_hash_map<std::string, size_t> index_;
};

}  // namespace

LatencyPrediction PredictionFromLog(double log_latency, double log_half_width) {
  return {std::exp(log_latency), std::exp(log_latency - log_half_width),
          std::exp(log_latency + log_half_width)};
}

absl::StatusOr<std::unique_ptr<LatencyModel>> MakeTabulatedModel(Method method, uint64_t seed,
                                                                 std::vector<DeviceTable> tables) {
  const size_t size = static_cast<size_t>(Nb201Space::Get().size());
  absl::flat_hash_map<std::string, int> seen;
  for (const DeviceTable& t : tables) {
    if (seen[t.device]++) {
      return absl::InvalidArgumentError(absl::StrCat("device \"", t.device, "\" appears twice"));
    }
    if (t.log_latency.size() != size || t.log_half_width.size() != size) {
      return absl::InvalidArgumentError(
          absl::StrCat("device \"", t.device, "\": tables of ", t.log_latency.size(), " and ",
                       t.log_half_width.size(), " entries, the space has ", size));
    }
    for (size_t a = 0; a < size; ++a) {
      if (!std::isfinite(t.log_latency[a]) || !std::isfinite(t.log_half_width[a]) ||
          t.log_half_width[a] < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("device \"", t.device, "\": bad table entry at arch ", a));
      }
    }
  }
  return std::unique_ptr<LatencyModel>(new TabulatedLatencyModel(method, seed, std::move(tables)));
}

}  // namespace maplex::core

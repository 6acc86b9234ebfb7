#include "core/eval/cross_validation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "core/model/reference_set.h"
#include "core/model/tabulated_model.h"
#include "core/model/trainer.h"

namespace maplex::core {
namespace {

// Fisher-Yates with our own index draw: std::shuffle and the std distributions differ
// between standard libraries, and the folds must not.
void Shuffle(std::vector<size_t>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

// The held-out predictions of `device` from a fit of `trainer` without them. The one place
// here that reads a fit's result (ModelTrainer::Fit's table).
absl::Status FitAndPredict(const ModelTrainer& trainer, const DeviceData& device, Method method,
                           absl::Span<const DeviceData* const> same_hardware,
                           absl::Span<const LatencySample> training,
                           absl::Span<const int32_t> held_out, absl::Span<LatencyPrediction> out) {
  DeviceData folded;
  folded.device = device.device;
  folded.hardware = device.hardware;
  folded.descriptor = device.descriptor;
  folded.samples.assign(training.begin(), training.end());
  absl::StatusOr<DeviceTable> table = trainer.Fit(folded, method, nullptr, same_hardware);
  if (!table.ok()) return table.status();
  for (size_t i = 0; i < held_out.size(); ++i) {
    const int32_t a = held_out[i];
    out[i] = PredictionFromLog(table->log_latency[a], table->log_half_width[a]);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CrossValidation> CrossValidate(absl::Span<const LatencySample> samples,
                                              const CrossValidationOptions& options,
                                              const FoldFitter& fit) {
  if (options.folds < 2 || options.max_scored_samples < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("cross-validation needs folds >= 2 and max_scored_samples >= 2 (got ",
                     options.folds, ", ", options.max_scored_samples, ")"));
  }
  const size_t n = samples.size();
  if (n < static_cast<size_t>(std::max(options.min_samples, 2))) {
    return absl::FailedPreconditionError(absl::StrCat(
        n, " measurements; cross-validation needs at least ", std::max(options.min_samples, 2)));
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  Shuffle(order, options.seed);
  const size_t scored = std::min(n, static_cast<size_t>(options.max_scored_samples));
  // Leave-one-out when every held-out sample can have its own fold within the budget.
  const size_t folds = std::min(scored, static_cast<size_t>(options.folds));

  CrossValidation result;
  result.folds = static_cast<int>(folds);
  std::vector<bool> in_fold(n);
  for (size_t f = 0; f < folds; ++f) {
    std::fill(in_fold.begin(), in_fold.end(), false);
    std::vector<int32_t> held_out;
    std::vector<size_t> held_index;
    for (size_t i = f; i < scored; i += folds) {
      in_fold[order[i]] = true;
      held_out.push_back(samples[order[i]].arch_index);
      held_index.push_back(order[i]);
    }
    std::vector<LatencySample> training;
    training.reserve(n - held_out.size());
    for (size_t i = 0; i < n; ++i) {
      if (!in_fold[i]) training.push_back(samples[i]);
    }
    std::vector<LatencyPrediction> predicted(held_out.size());
    if (absl::Status s = fit(training, held_out, absl::MakeSpan(predicted)); !s.ok()) return s;
    for (size_t j = 0; j < held_out.size(); ++j) {
      result.held_out.push_back({samples[held_index[j]], predicted[j]});
    }
  }
  std::sort(result.held_out.begin(), result.held_out.end(),
            [](const HeldOutPrediction& a, const HeldOutPrediction& b) {
              return a.measured.arch_index < b.measured.arch_index;
            });
  std::vector<LatencyPrediction> predicted;
  std::vector<double> measured;
  for (const HeldOutPrediction& h : result.held_out) {
    predicted.push_back(h.predicted);
    measured.push_back(h.measured.latency_ms);
  }
  result.metrics = ComputeAccuracy(predicted, measured);
  return result;
}

absl::StatusOr<std::vector<DeviceCrossValidation>> CrossValidateDevices(
    const std::vector<DeviceData>& devices, const TrainOptions& train,
    const CrossValidationOptions& options, const std::vector<std::string>& only) {
  const int32_t space_size = Nb201Space::Get().size();
  if (absl::Status s = ValidateDevices(devices, space_size); !s.ok()) return s;
  auto is_reference = [&](const DeviceData& d) {
    return Coverage(d, space_size) >= train.reference_min_coverage;
  };
  std::vector<const DeviceData*> references;
  for (const DeviceData& d : devices) {
    if (is_reference(d)) references.push_back(&d);
  }
  std::unique_ptr<ModelTrainer> trainer;  // built when a device is to be scored

  std::vector<DeviceCrossValidation> out;
  for (const DeviceData& d : devices) {
    if (!only.empty() && std::find(only.begin(), only.end(), d.device) == only.end()) continue;
    DeviceCrossValidation& r = out.emplace_back();
    r.device = d.device;
    r.samples = static_cast<int>(d.samples.size());
    r.reference = is_reference(d);
    if (r.reference) {
      r.not_scored = "reference device: its measurements are the reference set every fit reads";
      continue;
    }
    if (r.samples < std::max(options.min_samples, 2)) {
      r.not_scored = absl::StrCat("fewer than ", std::max(options.min_samples, 2),
                                  " measurements to cross-validate");
      continue;
    }
    if (trainer == nullptr) {
      if (references.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("no device covers ", train.reference_min_coverage,
                         " of the architecture space, so none can serve as a reference device"));
      }
      absl::StatusOr<std::unique_ptr<ModelTrainer>> created =
          ModelTrainer::Create(references, train.seed);
      if (!created.ok()) return created.status();
      trainer = *std::move(created);
    }
    // The same-hardware evidence TrainLatencyModel gives this device's fit.
    std::vector<const DeviceData*> same_hardware;
    for (const DeviceData& o : devices) {
      if (&o != &d && !d.hardware.empty() && o.hardware == d.hardware && !is_reference(o)) {
        same_hardware.push_back(&o);
      }
    }
    absl::StatusOr<CrossValidation> cv = CrossValidate(
        d.samples, options,
        [&](absl::Span<const LatencySample> training, absl::Span<const int32_t> held_out,
            absl::Span<LatencyPrediction> predicted) {
          return FitAndPredict(*trainer, d, train.method, same_hardware, training, held_out,
                               predicted);
        });
    // One device's failed refit leaves the others' scores standing.
    if (!cv.ok()) {
      r.not_scored = absl::StrCat("cross-validation failed: ", cv.status().message());
      continue;
    }
    r.cv = *std::move(cv);
  }
  return out;
}

}  // namespace maplex::core

#include "client/report/accuracy_report.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/arch/nb201_space.h"
#include "core/eval/evaluation.h"
#include "core/eval/function_evaluation.h"
#include "core/eval/metrics.h"
#include "core/hardware/descriptor.h"
#include "core/model/function_trainer.h"
#include "core/model/trainer.h"

namespace maplex::client {
namespace {

constexpr int kScatterPoints = 2000;  // enough to see the shape, small enough to render
constexpr int kSimilarShown = 10;
const std::vector<int> kSampleCounts = {3, 5, 10, 20};
constexpr int kSeeds = 3;
constexpr double kReferenceCoverage = 0.9;  // as the server's TrainOptions
constexpr uint64_t kHeldOutSeed = 17;       // figure 3's held-out half of stored measurements

// The server's cross-validated figures of `device` in `model`, in one line.
std::string ServerAccuracy(const v1::ModelInfo& model, const std::string& device) {
  for (const v1::DeviceAccuracy& a : model.device_accuracy()) {
    if (a.device_id() != device) continue;
    if (a.scored() == 0) return a.basis();
    return absl::StrFormat(
        "Spearman ρ %.4f / within ±10 %% %.3f / MAPE %.2f %% / 90 %% coverage %.3f (%d "
        "measurements held out, %d folds; model version %d)",
        a.spearman(), a.acc10(), a.mape(), a.coverage90(), a.scored(), a.folds(), model.version());
  }
  return absl::StrCat("not in model version ", model.version());
}

std::string Html(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Row(const std::vector<std::string>& cells, const char* tag = "td") {
  std::string out = "<tr>";
  for (const std::string& c : cells) absl::StrAppend(&out, "<", tag, ">", Html(c), "</", tag, ">");
  return out + "</tr>\n";
}

std::string Figure(const std::string& id, const std::string& title, const std::string& body,
                   const std::string& note) {
  return absl::StrCat("<figure id=\"", id, "\">\n<figcaption>", Html(title), "</figcaption>\n",
                      body, "<p class=\"note\">", Html(note), "</p>\n</figure>\n");
}

std::string Unavailable(const std::string& why) {
  return absl::StrCat("<p class=\"unavailable\">Not computed: ", Html(why), "</p>\n");
}

// Reference devices for the report's refits: other hardware, measured on most of the space.
std::vector<const core::DeviceData*> References(const std::vector<core::DeviceData>& fleet,
                                                const core::DeviceData& target) {
  std::vector<const core::DeviceData*> refs;
  for (const core::DeviceData& d : fleet) {
    if (d.hardware == target.hardware) continue;
    if (d.samples.size() >= kReferenceCoverage * core::kNb201CellCount) refs.push_back(&d);
  }
  return refs;
}

std::string AccuracyVsSamples(const AccuracyReportInput& in, const core::DeviceData& target,
                              const std::vector<const core::DeviceData*>& refs,
                              core::Method method) {
  const std::string title = "Accuracy vs number of samples";
  std::vector<core::DeviceData> devices;
  core::EvaluationOptions options;
  for (const core::DeviceData* r : refs) {
    devices.push_back(*r);
    options.train.push_back(r->device);
  }
  core::DeviceData scored = target;
  scored.samples = in.truth;
  devices.push_back(scored);
  options.test = {target.device};
  options.methods = {method};
  options.seeds = kSeeds;
  const core::Nb201Space& space = core::Nb201Space::Get();
  size_t connected = 0;
  for (const core::LatencySample& s : in.truth) connected += space.IsOutputConnected(s.arch_index);
  options.ks.clear();
  for (int k : kSampleCounts) {
    if (static_cast<size_t>(k) < connected) options.ks.push_back(k);
  }
  const std::string note = absl::StrCat(
      core::MethodName(method), " refit in the client with k of the ", connected,
      " measured cells (", in.truth_source, ") drawn at random, ", kSeeds, " draws each, against ",
      refs.size(), " reference devices; scored on the remaining cells with a connected output.");
  if (refs.empty()) {
    return Figure("accuracy-vs-samples", title, Unavailable("no reference device"), note);
  }
  if (options.ks.empty()) {
    return Figure("accuracy-vs-samples", title,
                  Unavailable("too few measured cells to leave any out"), note);
  }
  absl::StatusOr<core::EvaluationReport> report = core::RunEvaluation(devices, options);
  if (!report.ok()) {
    return Figure("accuracy-vs-samples", title, Unavailable(report.status().ToString()), note);
  }
  std::string table = "<table class=\"numbers\">\n" +
                      Row({"k", "Spearman ρ", "within ±10 %", "MAPE %", "90 % coverage"}, "th");
  for (const core::MeanResult& m : report->means) {
    table += Row({absl::StrCat(m.k), absl::StrFormat("%.3f", m.metrics.spearman),
                  absl::StrFormat("%.3f", m.metrics.acc10),
                  absl::StrFormat("%.1f", 100 * m.metrics.mape),
                  absl::StrFormat("%.3f", m.metrics.coverage90)});
  }
  table += "</table>\n";
  return Figure("accuracy-vs-samples", title, core::AccuracyVsKSvg(*report) + table, note);
}

std::string SimilarDevices(const AccuracyReportInput& in, const core::DeviceData& target,
                           const std::vector<const core::DeviceData*>& refs) {
  const std::string title = "Most similar known devices";
  const std::string note =
      "MAPLE-X importance weights of the reference devices for this device (RBF similarity "
      "of the specifications times agreement with the device's stored samples), computed "
      "here from the server's data; they sum to 1.";
  if (refs.size() < 2) {
    return Figure("similar-devices", title,
                  Unavailable("MAPLE-X needs at least two reference devices"), note);
  }
  absl::StatusOr<std::unique_ptr<core::ModelTrainer>> trainer =
      core::ModelTrainer::Create(refs, /*seed=*/1);
  if (!trainer.ok()) {
    return Figure("similar-devices", title, Unavailable(trainer.status().ToString()), note);
  }
  core::MapleFitInfo info;
  absl::StatusOr<core::DeviceTable> fit = (*trainer)->Fit(target, core::Method::kMapleX, &info);
  if (!fit.ok()) {
    return Figure("similar-devices", title, Unavailable(fit.status().ToString()), note);
  }
  std::vector<std::pair<double, const core::DeviceData*>> ranked;
  for (size_t i = 0; i < refs.size() && i < info.weights.size(); ++i) {
    ranked.push_back({info.weights[i], refs[i]});
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::pair<std::string, double>> bars;
  std::string table = "<table id=\"similar-devices-table\">\n" +
                      Row({"rank", "device", "hardware", "category", "weight"}, "th");
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(kSimilarShown); ++i) {
    const core::DeviceData& d = *ranked[i].second;
    auto name = in.hardware_names.find(d.device);
    bars.push_back({d.device, ranked[i].first});
    table += Row({absl::StrCat(i + 1), d.device,
                  name == in.hardware_names.end() ? d.hardware : name->second,
                  core::DeviceCategoryName(d.descriptor.spec.category),
                  absl::StrFormat("%.3f", ranked[i].first)});
  }
  table += "</table>\n";
  return Figure("similar-devices", title, core::WeightsSvg(bars, "importance weight") + table,
                note);
}

constexpr char kStyle[] =
    "<style>\n"
    "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}\n"
    "figure{margin:2em 0;border-top:1px solid #ccc;padding-top:1em}\n"
    "figcaption{font-size:1.3em;font-weight:bold;margin-bottom:.5em}\n"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;"
    "padding:.2em .6em;text-align:left}\n.note{color:#555;font-size:.9em}\n"
    ".unavailable{color:#a00}\n</style>\n";

// The predictions of a report's scored architectures against their measurements: the
// metrics, every relative error, and the predicted-vs-measured points (every `step`th).
struct Scored {
  core::AccuracyMetrics metrics;
  core::ScatterSeries scatter;
  std::vector<double> relative_errors;
  size_t step = 1;
  size_t count = 0;
};
Scored Score(core::Method method, const std::string& device,
             const std::vector<core::LatencyPrediction>& predicted,
             const std::vector<double>& measured) {
  Scored out;
  out.metrics = core::ComputeAccuracy(predicted, measured);
  out.scatter = core::ScatterSeries{method, device, {}, {}};
  out.step = std::max<size_t>(1, predicted.size() / kScatterPoints);
  out.count = predicted.size();
  for (size_t i = 0; i < predicted.size(); ++i) {
    out.relative_errors.push_back(predicted[i].latency_ms / measured[i] - 1);
    if (i % out.step != 0) continue;
    out.scatter.measured_ms.push_back(measured[i]);
    out.scatter.predicted_ms.push_back(predicted[i].latency_ms);
  }
  return out;
}

// The summary rows every report starts with: the device's hardware and configuration.
std::string DeviceRows(const v1::Device& d) {
  return absl::StrCat(Row({"hardware", d.hardware_name()}), Row({"category", d.spec().category()}),
                      Row({"runtime / precision / batch / threads",
                           absl::StrCat(d.config().runtime(), " / ", d.config().precision(), " / ",
                                        d.config().batch_size(), " / ", d.config().threads())}));
}

std::string ModelRow(const v1::ModelInfo& model) {
  return Row(
      {"model", absl::StrCat("version ", model.version(), " (", model.method(), "), trained ",
                             absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                                              absl::FromUnixMillis(model.created_at_unix_ms()),
                                              absl::UTCTimeZone()))});
}

// Figures 1 and 2: predicted vs measured, and the error histogram. `what` names the scored
// items ("cells", "architectures"); `suffix` is added to both titles.
std::string ScoredFigures(const Scored& scored, const std::string& predictions_source,
                          const std::string& truth_source, const std::string& what,
                          const std::string& suffix) {
  return absl::StrCat(
      Figure("predicted-vs-measured", absl::StrCat("Predicted vs measured latency", suffix),
             core::ScatterSvg(scored.scatter),
             absl::StrCat("Predictions of ", predictions_source, " against ", truth_source,
                          scored.count > scored.scatter.measured_ms.size()
                              ? absl::StrCat(" (every ", scored.step, "th of ", scored.count, " ",
                                             what, " shown)")
                              : "",
                          "; solid: equal, dashed: ±10 %.")),
      Figure("error-histogram", absl::StrCat("Error histogram", suffix),
             core::ErrorHistogramSvg(scored.relative_errors),
             "Relative error (predicted / measured − 1) of the same predictions, in 5 % bins; "
             "the outer bars hold everything beyond ±50 %."));
}

// The server's figures of `device` in `space` (a device known in two spaces has two).
std::string ServerAccuracyInSpace(const v1::ModelInfo& model, const std::string& device,
                                  const std::string& space) {
  for (const v1::DeviceAccuracy& a : model.device_accuracy()) {
    if (a.device_id() != device || a.space() != space) continue;
    v1::ModelInfo one;
    one.set_version(model.version());
    *one.add_device_accuracy() = a;
    return ServerAccuracy(one, device);
  }
  return absl::StrCat("not in model version ", model.version(), " for space ", space);
}

// The table's columns that are references for `target`'s refits: other hardware, with at
// least as many measurements in the space as the server's trainer asks of a reference.
std::vector<int> FunctionReferences(const core::SpaceLatencyTable& table, int target) {
  const int min_samples = core::FunctionTrainOptions().reference_min_samples;
  std::vector<int> refs;
  for (size_t d = 0; d < table.devices.size(); ++d) {
    const core::SpaceLatencyTable::Column& c = table.devices[d];
    if (static_cast<int>(d) == target || c.hardware == table.devices[target].hardware) continue;
    int measured = 0;
    for (double ms : c.latency_ms) measured += std::isfinite(ms) ? 1 : 0;
    if (measured >= min_samples) refs.push_back(static_cast<int>(d));
  }
  return refs;
}

std::string FunctionAccuracyVsSamples(const FunctionReportInput& in, int target,
                                      const std::vector<int>& refs, core::Method method) {
  const std::string title = "Accuracy vs number of samples";
  const core::SpaceLatencyTable& table = in.table;
  const core::SpaceLatencyTable::Column& column = table.devices[target];
  // The architectures held out of every device: the scored ones when no device measured
  // them, else a seeded half of the device's measured architectures.
  std::vector<core::Architecture> held_out;
  if (in.scored_unseen_by_fleet) {
    held_out = in.scored;
  } else {
    for (size_t r = 0; r < table.archs.size(); ++r) {
      if (std::isfinite(column.latency_ms[r])) held_out.push_back(table.archs[r]);
    }
    std::mt19937_64 rng(kHeldOutSeed);
    std::shuffle(held_out.begin(), held_out.end(), rng);
    held_out.resize(held_out.size() / 2);
  }
  const absl::flat_hash_set<core::Architecture> held(held_out.begin(), held_out.end());
  size_t pool = 0, scored = 0;
  for (size_t r = 0; r < table.archs.size(); ++r) {
    if (!std::isfinite(column.latency_ms[r]) || !table.space->IsOutputConnected(table.archs[r])) {
      continue;
    }
    (held.contains(table.archs[r]) ? scored : pool) += 1;
  }
  core::FunctionEvaluationOptions options;
  options.test = {column.device};
  for (int r : refs) options.train.push_back(table.devices[r].device);
  options.methods = {method};
  options.seeds = kSeeds;
  options.test_archs = held_out;
  options.ks.clear();
  for (int k : kSampleCounts) {
    if (static_cast<size_t>(k) < pool) options.ks.push_back(k);
  }
  const std::string note = absl::StrCat(
      core::MethodName(method), " refit in the client (core/eval/function_evaluation.h, ",
      "maplex-eval's protocol) with k of the device's ", pool,
      " other measured architectures drawn at random, ", kSeeds, " draws each, against ",
      refs.size(), " reference devices; scored on ", scored, " held-out architectures (",
      in.scored_unseen_by_fleet ? "the ones no device on the server measured"
                                : "a seeded half of the device's measured architectures",
      "), which neither the reference devices nor the device trained on.");
  if (refs.empty()) {
    return Figure("accuracy-vs-samples", title, Unavailable("no reference device"), note);
  }
  if (options.ks.empty() || scored < 3) {
    return Figure("accuracy-vs-samples", title,
                  Unavailable("too few measured architectures to hold out and draw from"), note);
  }
  // Only the devices the protocol reads: the references and this one.
  core::SpaceLatencyTable used;
  used.space = table.space;
  used.archs = table.archs;
  for (int r : refs) used.devices.push_back(table.devices[r]);
  used.devices.push_back(column);
  absl::StatusOr<core::FunctionEvaluationReport> report =
      core::RunFunctionEvaluation(used, options);
  if (!report.ok()) {
    return Figure("accuracy-vs-samples", title, Unavailable(report.status().ToString()), note);
  }
  std::string curve = "<table id=\"accuracy-vs-samples-table\" class=\"numbers\">\n" +
                      Row({"k", "Spearman ρ", "within ±10 %", "MAPE %", "90 % coverage"}, "th");
  for (const core::MeanResult& m : report->report.means) {
    curve += Row({absl::StrCat(m.k), absl::StrFormat("%.3f", m.metrics.spearman),
                  absl::StrFormat("%.3f", m.metrics.acc10),
                  absl::StrFormat("%.1f", 100 * m.metrics.mape),
                  absl::StrFormat("%.3f", m.metrics.coverage90)});
  }
  curve += "</table>\n";
  return Figure("accuracy-vs-samples", title, core::AccuracyVsKSvg(report->report) + curve, note);
}

std::string RankAlikeDevices(const FunctionReportInput& in, int target) {
  const std::string title = "Most similar known devices";
  const std::string note =
      "Spearman ρ between each known device's measured latencies and this device's, on the "
      "architectures (with a connected output) both measured; devices sharing fewer than 3 "
      "are left out.";
  const core::SpaceLatencyTable& table = in.table;
  const std::vector<double>& mine = table.devices[target].latency_ms;
  std::vector<std::pair<double, int>> ranked;
  for (size_t d = 0; d < table.devices.size(); ++d) {
    if (static_cast<int>(d) == target) continue;
    std::vector<core::LatencyPrediction> theirs;
    std::vector<double> ours;
    for (size_t r = 0; r < table.archs.size(); ++r) {
      const double ms = table.devices[d].latency_ms[r];
      if (!std::isfinite(ms) || !std::isfinite(mine[r]) ||
          !table.space->IsOutputConnected(table.archs[r])) {
        continue;
      }
      theirs.push_back({ms, ms, ms});
      ours.push_back(mine[r]);
    }
    if (ours.size() < 3) continue;
    ranked.push_back({core::ComputeAccuracy(theirs, ours).spearman, static_cast<int>(d)});
  }
  if (ranked.empty()) {
    return Figure("similar-devices", title,
                  Unavailable("no known device measured 3 architectures this device measured"),
                  note);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::pair<std::string, double>> bars;
  std::string rows = "<table id=\"similar-devices-table\">\n" +
                     Row({"rank", "device", "hardware", "category", "Spearman ρ"}, "th");
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(kSimilarShown); ++i) {
    const core::SpaceLatencyTable::Column& c = table.devices[ranked[i].second];
    auto name = in.hardware_names.find(c.device);
    bars.push_back({c.device, ranked[i].first});
    rows += Row({absl::StrCat(i + 1), c.device,
                 name == in.hardware_names.end() ? c.hardware : name->second,
                 core::DeviceCategoryName(c.descriptor.spec.category),
                 absl::StrFormat("%.3f", ranked[i].first)});
  }
  rows += "</table>\n";
  return Figure("similar-devices", title, core::WeightsSvg(bars, "Spearman ρ") + rows, note);
}

}  // namespace

absl::StatusOr<std::string> FunctionAccuracyReportHtml(const FunctionReportInput& in) {
  if (in.scored.empty() || in.scored.size() != in.measured_ms.size() ||
      in.scored.size() != in.predicted.size()) {
    return absl::InvalidArgumentError("the report needs predictions for held-out architectures");
  }
  if (in.table.space == nullptr) return absl::InvalidArgumentError("the report needs a space");
  int target = -1;
  for (size_t d = 0; d < in.table.devices.size(); ++d) {
    if (in.table.devices[d].device == in.device.id()) target = static_cast<int>(d);
  }
  if (target < 0) {
    return absl::NotFoundError(absl::StrCat("device \"", in.device.id(),
                                            "\" has no measurements in ",
                                            std::string(in.table.space->name())));
  }
  absl::StatusOr<core::Method> method = core::ParseMethod(in.model.method());
  if (!method.ok()) return method.status();
  const std::string space(in.table.space->name());

  // The evaluation protocol scores architectures with a connected output only.
  std::vector<core::LatencyPrediction> predicted;
  std::vector<double> measured;
  for (size_t i = 0; i < in.scored.size(); ++i) {
    if (!in.table.space->IsOutputConnected(in.scored[i])) continue;
    predicted.push_back(in.predicted[i]);
    measured.push_back(in.measured_ms[i]);
  }
  const Scored scored = Score(*method, in.device.id(), predicted, measured);
  const core::AccuracyMetrics& m = scored.metrics;

  const v1::Device& d = in.device;
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>maplex "
      "accuracy report: ",
      Html(d.id()), " (", Html(space), ")</title>\n", kStyle,
      "</head>\n<body>\n<h1>Accuracy report: ", Html(d.id()), " in ", Html(space),
      "</h1>\n<table id=\"summary\">\n", Row({"space", space}), DeviceRows(d),
      Row({"stored measurements", absl::StrCat(in.stored_samples, " architectures")}),
      ModelRow(in.model),
      Row({"scored against", absl::StrCat(in.truth_source, ": ", m.count,
                                          " held-out architectures with a connected output")}),
      Row({"predictions", in.predictions_source}),
      Row({"held-out Spearman ρ / within ±5 % / within ±10 % / MAPE / 90 % coverage",
           absl::StrFormat("%.4f / %.3f / %.3f / %.2f %% / %.3f", m.spearman, m.acc5, m.acc10,
                           100 * m.mape, m.coverage90)}),
      Row({"on the server", ServerAccuracyInSpace(in.model, d.id(), space)}), "</table>\n");
  html += ScoredFigures(scored, in.predictions_source, in.truth_source, "architectures",
                        " (held-out architectures)");
  html += FunctionAccuracyVsSamples(in, target, FunctionReferences(in.table, target), *method);
  html += RankAlikeDevices(in, target);
  html += "</body>\n</html>\n";
  return html;
}

absl::StatusOr<std::string> AccuracyReportHtml(const AccuracyReportInput& in) {
  if (in.truth.empty() || in.truth.size() != in.predicted.size()) {
    return absl::InvalidArgumentError("the report needs predictions for measured cells");
  }
  const core::DeviceData* target = nullptr;
  for (const core::DeviceData& d : in.fleet) {
    if (d.device == in.device.id()) target = &d;
  }
  if (target == nullptr) {
    return absl::NotFoundError(absl::StrCat("device \"", in.device.id(), "\" has no measurements"));
  }
  absl::StatusOr<core::Method> method = core::ParseMethod(in.model.method());
  if (!method.ok()) return method.status();

  // The evaluation protocol scores cells with a connected output only.
  const core::Nb201Space& space = core::Nb201Space::Get();
  std::vector<core::LatencyPrediction> predicted;
  std::vector<double> measured;
  for (size_t i = 0; i < in.truth.size(); ++i) {
    if (!space.IsOutputConnected(in.truth[i].arch_index)) continue;
    predicted.push_back(in.predicted[i]);
    measured.push_back(in.truth[i].latency_ms);
  }
  const Scored scored = Score(*method, in.device.id(), predicted, measured);
  const core::AccuracyMetrics& m = scored.metrics;

  const std::vector<const core::DeviceData*> refs = References(in.fleet, *target);
  const v1::Device& d = in.device;
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>maplex "
      "accuracy report: ",
      Html(d.id()), "</title>\n", kStyle, "</head>\n<body>\n<h1>Accuracy report: ", Html(d.id()),
      "</h1>\n<table id=\"summary\">\n", DeviceRows(d),
      Row({"stored measurements", absl::StrCat(target->samples.size(), " architectures")}),
      ModelRow(in.model),
      Row({"scored against",
           absl::StrCat(in.truth_source, ": ", m.count, " cells with a connected output")}),
      Row({"predictions", in.predictions_source}),
      Row({"Spearman ρ / within ±5 % / within ±10 % / MAPE / 90 % coverage",
           absl::StrFormat("%.4f / %.3f / %.3f / %.2f %% / %.3f", m.spearman, m.acc5, m.acc10,
                           100 * m.mape, m.coverage90)}),
      Row({"cross-validated on the server", ServerAccuracy(in.model, d.id())}), "</table>\n");
  html += ScoredFigures(scored, in.predictions_source, in.truth_source, "cells", "");
  html += AccuracyVsSamples(in, *target, refs, *method);
  html += SimilarDevices(in, *target, refs);
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace maplex::client

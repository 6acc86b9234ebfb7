// The offline evaluation protocol of research/MAPLE-X.md: leave one piece of hardware out
// (or an explicit train/test split), draw k target samples per seed, fit every method on
// the same samples, and score the other architectures of the target whose cell output is
// connected (the disconnected ones are scored apart). Also renders the report as JSON,
// Markdown and hand-written SVG. Used by maplex-eval (bench/) and `maplex report`.
//
//   EvaluationOptions o;  o.ks = {3, 10};
//   absl::StatusOr<EvaluationReport> r = RunEvaluation(devices, o);
//   std::string json = ReportJson(*r);
#ifndef MAPLEX_CORE_EVAL_EVALUATION_H_
#define MAPLEX_CORE_EVAL_EVALUATION_H_

#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/eval/metrics.h"
#include "core/model/latency_model.h"
#include "core/model/maple_model.h"

namespace maplex::core {

struct EvaluationOptions {
  // Both empty: leave one hardware out. Otherwise train on exactly `train`, test `test`.
  std::vector<std::string> train;
  std::vector<std::string> test;
  std::vector<int> ks = {3, 5, 10, 20};
  int seeds = 5;
  // The seeds are first_seed, first_seed + 1, ...: disjoint draws of the same protocol (how
  // far a 5-seed mean moves between draws, docs/ACCURACY.md).
  int first_seed = 0;
  // The k samples: random draws (one per seed), or the picks of the D-optimal planner
  // built on the fold's training devices, as a server would ask for them (deterministic:
  // every seed repeats them).
  bool planned_samples = false;
  std::vector<Method> methods = {Method::kBaseline, Method::kMaple, Method::kMapleVirtualExamples,
                                 Method::kMapleWeights, Method::kMapleX};
  // Predictions of the last method at this k and the first seed are kept for the scatter
  // plots (one per test device).
  int scatter_k = 10;
  int scatter_points = 300;
  MapleConfig maple;
};

// Metrics of one (method, k, device), averaged over seeds.
struct DeviceResult {
  Method method;
  int k = 0;
  std::string device;
  int seed_count = 0;
  AccuracyMetrics connected;     // the protocol's figures
  AccuracyMetrics disconnected;  // the 341 cells whose output ignores the input
};

struct MeanResult {
  Method method;
  int k = 0;
  AccuracyMetrics metrics;  // mean over devices
};

struct ScatterSeries {
  Method method;
  std::string device;
  std::vector<double> measured_ms, predicted_ms;
};

struct EvaluationReport {
  std::vector<DeviceResult> results;
  std::vector<MeanResult> means;
  std::vector<ScatterSeries> scatter;
};

// Per (method, k, device): the metrics summed over seeds, seed_count seeds.
using SeedSums = std::map<std::tuple<int, int, std::string>, DeviceResult>;

// Appends to `report` each (method, k, device)'s mean over its seeds, devices in
// `device_order`, and each (method, k)'s mean over those devices.
void AppendMeans(const SeedSums& sums, const std::vector<Method>& methods,
                 const std::vector<int>& ks, const std::vector<std::string>& device_order,
                 EvaluationReport* report);

// InvalidArgument for an unknown device name in train/test, a k that leaves nothing to
// score, or a split without reference devices.
absl::StatusOr<EvaluationReport> RunEvaluation(const std::vector<DeviceData>& devices,
                                               const EvaluationOptions& options);

// The archs a seed's k samples are drawn from: connected cells the device measured.
// Deterministic in (seed, device, k); the same draw for every method.
std::vector<int32_t> DrawSamples(const std::vector<int32_t>& pool, int k, uint64_t seed,
                                 const std::string& device);

std::string ReportJson(const EvaluationReport& report);
std::string ReportMarkdown(const EvaluationReport& report, const std::string& command);
// Predicted vs measured (log-log) for one series.
std::string ScatterSvg(const ScatterSeries& series);
// Mean Spearman and +-10 % accuracy vs k, one line per method.
std::string AccuracyVsKSvg(const EvaluationReport& report);
// Histogram of relative errors (predicted / measured - 1): 5 % bins over +-50 %, and one
// bin each for what lies beyond.
std::string ErrorHistogramSvg(const std::vector<double>& relative_errors);
// Horizontal bars, one per (label, value), in the given order; `axis` names the value.
std::string WeightsSvg(const std::vector<std::pair<std::string, double>>& bars,
                       const std::string& axis);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_EVAL_EVALUATION_H_

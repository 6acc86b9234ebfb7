// The accuracy report of one device (`maplex report`): a self-contained HTML page — inline
// SVG and CSS, no script, nothing fetched — with four figures and the tables behind them:
//   1. predicted vs measured (log-log): the served model's predictions against a file of
//      measurements (--compare-with), or, against the device's stored measurements (which
//      the served model answers with themselves), cross-validated predictions: each
//      measurement predicted by a refit of the device without it (core/eval/
//      cross_validation.h, computed here in the client),
//   2. histogram of the relative errors of the same predictions,
//   3. accuracy vs number of samples: the served method refit here, in the client, with
//      k = 3, 5, 10, 20 of the measured cells the report scores against (stored or from
//      --compare-with) and the reference devices (other hardware, measured on >= 90 % of
//      the space), scored on the remaining cells (core/eval/evaluation.h, the maplex-eval
//      protocol, 3 draws per k),
//   4. the most similar known devices: the MAPLE-X importance weights of the reference
//      devices for this device, computed here from the same data.
// Figures 3 and 4 recompute from the measurements the server holds; they use the
// devices' specs and latencies, not the hardware counters agents report.
//
//   AccuracyReportInput in = ...;   // gathered over RPCs by the CLI
//   absl::StatusOr<std::string> html = AccuracyReportHtml(in);
#ifndef MAPLEX_CLIENT_REPORT_ACCURACY_REPORT_H_
#define MAPLEX_CLIENT_REPORT_ACCURACY_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/arch/architecture_space.h"
#include "core/dataset/latency_table.h"
#include "core/model/latency_model.h"
#include "maplex/v1/models.pb.h"
#include "maplex/v1/registry.pb.h"

namespace maplex::client {

struct AccuracyReportInput {
  maplex::v1::Device device;
  maplex::v1::ModelInfo model;  // the version that made `predicted`
  // Every active device with its measured latencies, the reported device included.
  std::vector<core::DeviceData> fleet;
  std::map<std::string, std::string> hardware_names;  // device id -> hardware name
  // The measured latencies the predictions are scored against, and what they are (said
  // on the page): the device's stored measurements, or a file given with --compare-with.
  std::string truth_source;
  std::vector<core::LatencySample> truth;
  std::vector<core::LatencyPrediction> predicted;  // predicted[i] is for truth[i]
  // Where `predicted` comes from, said on the page: "the served model", or the
  // cross-validated refits when `truth` is what the model was fit on.
  std::string predictions_source = "the served model";
};

// InvalidArgument when `truth` is empty or sizes differ, NotFound when the device is not
// in `fleet`. A figure that cannot be computed (e.g. fewer than two reference devices)
// says why in its place.
absl::StatusOr<std::string> AccuracyReportHtml(const AccuracyReportInput& input);

// The same page for a device of a function-model space (FBNet; core/model/function_model.h),
// every figure scored on architectures the model did not see:
//   1-2. the held-out architectures: with --compare-with, the file's architectures that no
//      device on the server measured (so no fit of the served model read them), predicted
//      by the served model; else the device's stored measurements, each predicted by a
//      refit of the device without it (FunctionModelTrainer, computed in the client),
//   3. accuracy vs number of samples: core/eval/function_evaluation.h (maplex-eval's
//      protocol) with the served method, k of the device's other measured architectures
//      and the reference devices (other hardware, >= FunctionTrainOptions'
//      reference_min_samples measurements in the space), scored on the same held-out
//      architectures (--compare-with) or a seeded 20 % of the table held out of every
//      device,
//   4. the known devices whose latencies rank the device's measured architectures most
//      alike (Spearman ρ on the architectures both measured).
struct FunctionReportInput {
  maplex::v1::Device device;
  maplex::v1::ModelInfo model;
  // Every active device's measurements in the space, the reported device's column holding
  // what the predictions are scored against (its stored measurements, or the file's).
  core::SpaceLatencyTable table;
  std::map<std::string, std::string> hardware_names;  // device id -> hardware name
  int stored_samples = 0;  // the device's measurements on the server, in the space
  // The held-out architectures scored, what they are (said on the page), their measured
  // latencies and predictions (scored[i], measured_ms[i], predicted[i]).
  std::string truth_source;
  std::vector<core::Architecture> scored;
  std::vector<double> measured_ms;
  std::vector<core::LatencyPrediction> predicted;
  std::string predictions_source;
  // true: `scored` are architectures no device measured, which figure 3 holds out too;
  // false (cross-validated stored measurements): figure 3 holds out a seeded share.
  bool scored_unseen_by_fleet = false;
};

// InvalidArgument when nothing is scored or sizes differ, NotFound when the device has no
// column in `table`. A figure that cannot be computed says why in its place.
absl::StatusOr<std::string> FunctionAccuracyReportHtml(const FunctionReportInput& input);

}  // namespace maplex::client

#endif  // MAPLEX_CLIENT_REPORT_ACCURACY_REPORT_H_

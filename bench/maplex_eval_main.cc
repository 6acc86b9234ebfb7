// maplex-eval: the offline accuracy evaluation (core/eval/evaluation.h) on a latency table.
//
//   maplex-eval --latency data/nb201_latency.csv.gz --devices data/nb201_devices.csv
//       [--train a,b,...] [--test x,y,...] [--k 3,5,10,20] [--seeds 5]
//       [--methods baseline,maple,maple+ve,maple+w,maplex]
//       [--samples random|planned] [--json OUT] [--markdown OUT] [--svg-dir DIR] [--maple
//       rank=8,virtual_weight=0.2,...]
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/data_files.h"
#include "core/eval/evaluation.h"

namespace {

struct Flags {
  std::string latency, devices, json, markdown, svg_dir;
  maplex::core::EvaluationOptions evaluation;
};

int Usage(const std::string& error) {
  std::fprintf(
      stderr,
      "maplex-eval: %s\nusage: maplex-eval --latency F.csv.gz --devices D.csv "
      "[--train a,b] [--test x,y] [--k 3,5,10,20] [--seeds 5] "
      "[--methods baseline,maple,maple+ve,maple+w,maplex] [--samples random|planned] [--json OUT] "
      "[--markdown OUT] [--svg-dir DIR] [--maple name=value,...]\n",
      error.c_str());
  return 2;
}

std::vector<std::string> List(const std::string& value) {
  return absl::StrSplit(value, ',', absl::SkipEmpty());
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  std::string command = "maplex-eval";
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) return Usage("flag " + name + " needs a value");
    const std::string value = argv[++i];
    command += " " + name + " " + value;
    if (name == "--latency") {
      flags.latency = value;
    } else if (name == "--devices") {
      flags.devices = value;
    } else if (name == "--train") {
      flags.evaluation.train = List(value);
    } else if (name == "--test") {
      flags.evaluation.test = List(value);
    } else if (name == "--k") {
      flags.evaluation.ks.clear();
      for (const std::string& k : List(value)) {
        int v;
        if (!absl::SimpleAtoi(k, &v) || v <= 0) return Usage("bad --k value " + k);
        flags.evaluation.ks.push_back(v);
      }
    } else if (name == "--seeds") {
      if (!absl::SimpleAtoi(value, &flags.evaluation.seeds) || flags.evaluation.seeds <= 0) {
        return Usage("bad --seeds value " + value);
      }
    } else if (name == "--methods") {
      flags.evaluation.methods.clear();
      for (const std::string& m : List(value)) {
        absl::StatusOr<maplex::core::Method> method = maplex::core::ParseMethod(m);
        if (!method.ok()) return Usage(std::string(method.status().message()));
        flags.evaluation.methods.push_back(*method);
      }
    } else if (name == "--samples") {
      if (value != "random" && value != "planned") return Usage("bad --samples value " + value);
      flags.evaluation.planned_samples = value == "planned";
    } else if (name == "--maple") {
      if (absl::Status s = maplex::core::ApplyMapleConfigOverrides(value, &flags.evaluation.maple);
          !s.ok()) {
        return Usage(std::string(s.message()));
      }
    } else if (name == "--json") {
      flags.json = value;
    } else if (name == "--markdown") {
      flags.markdown = value;
    } else if (name == "--svg-dir") {
      flags.svg_dir = value;
    } else {
      return Usage("unknown flag " + name);
    }
  }
  if (flags.latency.empty() || flags.devices.empty())
    return Usage("--latency and --devices are required");

  auto devices = maplex::client::LoadLatencyData(flags.latency, flags.devices);
  if (!devices.ok()) return Usage(std::string(devices.status().message()));
  auto report = maplex::core::RunEvaluation(*devices, flags.evaluation);
  if (!report.ok()) return Usage(std::string(report.status().message()));

  const std::string markdown = maplex::core::ReportMarkdown(*report, command);
  std::fputs(markdown.c_str(), stdout);
  std::vector<std::pair<std::string, std::string>> outputs;
  if (!flags.json.empty()) outputs.push_back({flags.json, maplex::core::ReportJson(*report)});
  if (!flags.markdown.empty()) outputs.push_back({flags.markdown, markdown});
  if (!flags.svg_dir.empty()) {
    outputs.push_back(
        {flags.svg_dir + "/accuracy_vs_k.svg", maplex::core::AccuracyVsKSvg(*report)});
    for (const auto& series : report->scatter) {
      outputs.push_back({flags.svg_dir + "/scatter_" + maplex::core::MethodName(series.method) +
                             "_" + series.device + ".svg",
                         maplex::core::ScatterSvg(series)});
    }
  }
  for (const auto& [path, contents] : outputs) {
    if (absl::Status s = maplex::client::WriteTextFile(path, contents); !s.ok()) {
      std::fprintf(stderr, "maplex-eval: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  return 0;
}

// maplex-eval: the offline accuracy evaluation (core/eval/evaluation.h) on a latency table.
//
//   maplex-eval --latency data/nb201_latency.csv.gz --devices data/nb201_devices.csv
//       [--train a,b,...] [--test x,y,...] [--k 3,5,10,20] [--seeds 5] [--first-seed 0]
//       [--methods baseline,maple,maple+ve,maple+w,maplex]
//       [--samples random|planned] [--json OUT] [--markdown OUT] [--svg-dir DIR] [--maple
//       rank=8,virtual_weight=0.2,...]
//       [--space nb201|fbnet] [--arch-holdout F] [--test-archs FILE] [--function name=value,...]
//       [--nested 1|0] [--nested-seeds N]
//
// Two models: the NB201 table model (the default for an NB201 table) and the function model
// (core/model/function_model.h), used for every other space and whenever --space,
// --arch-holdout or --test-archs is given. The function evaluation holds the chosen
// architectures out of every device's training (core/eval/function_evaluation.h).
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/data_files.h"
#include "core/arch/space_registry.h"
#include "core/dataset/latency_table.h"
#include "core/eval/evaluation.h"
#include "core/eval/function_evaluation.h"

namespace {

struct Flags {
  std::string latency, devices, json, markdown, svg_dir;
  maplex::core::EvaluationOptions evaluation;
  // The function model's evaluation: on when any of these is given or the table is not NB201's.
  std::string space, test_archs;
  bool function_flags = false;
  double arch_holdout = 0;
  maplex::core::FunctionEvaluationOptions function;
};

// The function evaluation's extra notes: the ceiling and the nested choices per fold.
std::string FunctionNotes(const maplex::core::FunctionEvaluationReport& r) {
  std::string out = absl::StrFormat(
      "\nScored rows held out of every device's training: %d (0: none held out; each target "
      "scores every row but its samples).\n\nCeiling (each device's own function fit on all "
      "its training rows):\n\n| device | Spearman ρ | ±10 %% |\n|---|---:|---:|\n",
      r.scored_rows);
  double rho = 0, acc = 0;
  for (const auto& [device, m] : r.ceiling) {
    absl::StrAppendFormat(&out, "| %s | %.3f | %.3f |\n", device, m.spearman, m.acc10);
    rho += m.spearman;
    acc += m.acc10;
  }
  const double n = std::max<size_t>(r.ceiling.size(), 1);
  absl::StrAppendFormat(&out, "| mean | %.3f | %.3f |\n", rho / n, acc / n);
  out +=
      "\nNested choices (per fold, method, k): 90 % half width in log units; maplex's "
      "settings (baseline mix: a fixed share, or \"adaptive x S\": S times the share chosen "
      "per target from the samples' leave-one-out errors); inner score: mean ρ + ±10 % over "
      "the fold's inner (target, draw) pairs of the default settings and of the chosen ones."
      "\n\n| fold | method | k | half width | virtual examples | baseline mix | agreement "
      "scale | unweighted share | inner score default | inner score chosen |\n"
      "|---|---|---:|---:|---|---:|---:|---:|---:|---:|\n";
  std::map<std::pair<std::string, int>, std::pair<double, int>> inner_mean;
  for (const maplex::core::FoldChoice& c : r.choices) {
    absl::StrAppendFormat(
        &out, "| %s | %s | %d | %.3f | %s | %s%.2f | %.3f | %.2f | %.4f | %.4f |\n", c.held_out,
        maplex::core::MethodName(c.method), c.k, c.log_half_width,
        c.virtual_examples ? "on" : "off", c.adaptive_mix ? "adaptive x " : "", c.baseline_mix,
        c.agreement_scale, c.unweighted_share, c.inner_default, c.inner_chosen);
    auto& [sum, count] = inner_mean[{std::string(maplex::core::MethodName(c.method)), c.k}];
    sum += c.inner_default;
    count += 1;
  }
  out += "\nInner score of the default settings, mean over folds:";
  for (const auto& [key, value] : inner_mean) {
    absl::StrAppendFormat(&out, " %s k = %d %.4f;", key.first, key.second,
                          value.first / std::max(value.second, 1));
  }
  out += "\n";
  return out;
}

int Usage(const std::string& error) {
  std::fprintf(
      stderr,
      "maplex-eval: %s\nusage: maplex-eval --latency F.csv.gz --devices D.csv "
      "[--train a,b] [--test x,y] [--k 3,5,10,20] [--seeds 5] [--first-seed 0] "
      "[--methods baseline,maple,maple+ve,maple+w,maplex] [--samples random|planned] [--json OUT] "
      "[--markdown OUT] [--svg-dir DIR] [--maple name=value,...] [--space nb201|fbnet] "
      "[--arch-holdout F] [--test-archs FILE] [--function name=value,...] [--nested 1|0] "
      "[--nested-seeds N]\n",
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
    } else if (name == "--first-seed") {
      if (!absl::SimpleAtoi(value, &flags.evaluation.first_seed) ||
          flags.evaluation.first_seed < 0) {
        return Usage("bad --first-seed value " + value);
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
    } else if (name == "--space") {
      if (maplex::core::FindSpace(value) == nullptr) return Usage("unknown --space " + value);
      flags.space = value;
      flags.function_flags = true;
    } else if (name == "--arch-holdout") {
      if (!absl::SimpleAtod(value, &flags.arch_holdout) || !(flags.arch_holdout >= 0) ||
          !(flags.arch_holdout < 1)) {
        return Usage("bad --arch-holdout value " + value + " (a share in [0, 1))");
      }
      flags.function_flags = true;
    } else if (name == "--test-archs") {
      flags.test_archs = value;
      flags.function_flags = true;
    } else if (name == "--function") {
      if (absl::Status s =
              maplex::core::ApplyFunctionConfigOverrides(value, &flags.function.config);
          !s.ok()) {
        return Usage(std::string(s.message()));
      }
      flags.function_flags = true;
    } else if (name == "--nested") {
      if (value != "0" && value != "1") return Usage("bad --nested value " + value);
      flags.function.nested = value == "1";
    } else if (name == "--nested-seeds") {
      if (!absl::SimpleAtoi(value, &flags.function.nested_seeds) ||
          flags.function.nested_seeds <= 0) {
        return Usage("bad --nested-seeds value " + value);
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

  absl::StatusOr<std::string> latency_csv = maplex::client::ReadMaybeGzippedFile(flags.latency);
  if (!latency_csv.ok()) return Usage(std::string(latency_csv.status().message()));
  const bool nb201_table = latency_csv->rfind("arch_index,arch_str,", 0) == 0;
  std::optional<maplex::core::EvaluationReport> report;
  std::string markdown;
  if (nb201_table && !flags.function_flags) {
    auto devices = maplex::client::LoadLatencyData(flags.latency, flags.devices);
    if (!devices.ok()) return Usage(std::string(devices.status().message()));
    auto table_report = maplex::core::RunEvaluation(*devices, flags.evaluation);
    if (!table_report.ok()) return Usage(std::string(table_report.status().message()));
    report = *std::move(table_report);
    markdown = maplex::core::ReportMarkdown(*report, command);
  } else {
    std::string devices_csv = "device\n";
    if (!flags.devices.empty()) {
      absl::StatusOr<std::string> d = maplex::client::ReadMaybeGzippedFile(flags.devices);
      if (!d.ok()) return Usage(std::string(d.status().message()));
      devices_csv = *std::move(d);
    }
    const maplex::core::ArchitectureSpace* space =
        flags.space.empty() ? nullptr : maplex::core::FindSpace(flags.space);
    absl::StatusOr<maplex::core::SpaceLatencyTable> table =
        maplex::core::ParseSpaceLatencyTable(*latency_csv, devices_csv, space);
    if (!table.ok()) return Usage(flags.latency + ": " + std::string(table.status().message()));
    maplex::core::FunctionEvaluationOptions& o = flags.function;
    o.train = flags.evaluation.train;
    o.test = flags.evaluation.test;
    o.ks = flags.evaluation.ks;
    o.seeds = flags.evaluation.seeds;
    o.first_seed = flags.evaluation.first_seed;
    o.methods = flags.evaluation.methods;
    o.arch_holdout = flags.arch_holdout;
    if (!flags.test_archs.empty()) {
      absl::StatusOr<std::string> text = maplex::client::ReadMaybeGzippedFile(flags.test_archs);
      if (!text.ok()) return Usage(std::string(text.status().message()));
      int line_no = 0;
      for (absl::string_view line : absl::StrSplit(*text, '\n')) {
        ++line_no;
        std::string arch(absl::StripAsciiWhitespace(line));
        if (arch.empty()) continue;
        absl::StatusOr<maplex::core::Architecture> a = table->space->Parse(arch);
        if (!a.ok()) {
          return Usage(
              absl::StrCat(flags.test_archs, " line ", line_no, ": ", a.status().message()));
        }
        o.test_archs.push_back(*a);
      }
      if (o.test_archs.empty()) return Usage(flags.test_archs + " names no architecture");
    }
    auto function_report = maplex::core::RunFunctionEvaluation(*table, o);
    if (!function_report.ok()) return Usage(std::string(function_report.status().message()));
    report = function_report->report;
    markdown = absl::StrCat("Space: ", std::string(table->space->name()), ", function model.\n\n",
                            maplex::core::ReportMarkdown(*report, command),
                            FunctionNotes(*function_report));
  }
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

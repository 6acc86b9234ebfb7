#include "core/eval/evaluation.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/arch/nb201_space.h"
#include "core/model/tabulated_model.h"
#include "core/model/trainer.h"
#include "core/planning/measurement_planner.h"
#include "nlohmann/json.hpp"

namespace maplex::core {
namespace {

struct Fold {
  std::vector<const DeviceData*> references;
  std::vector<const DeviceData*> tests;
};

absl::StatusOr<std::vector<Fold>> MakeFolds(const std::vector<DeviceData>& devices,
                                            const EvaluationOptions& options) {
  std::map<std::string, const DeviceData*> by_name;
  for (const DeviceData& d : devices) by_name[d.device] = &d;
  std::vector<Fold> folds;
  if (options.train.empty() && options.test.empty()) {
    // Leave one piece of hardware out: all of its configurations leave together.
    std::vector<std::string> hardware;
    for (const DeviceData& d : devices) {
      if (std::find(hardware.begin(), hardware.end(), d.hardware) == hardware.end()) {
        hardware.push_back(d.hardware);
      }
    }
    for (const std::string& h : hardware) {
      Fold fold;
      for (const DeviceData& d : devices)
        (d.hardware == h ? fold.tests : fold.references).push_back(&d);
      folds.push_back(std::move(fold));
    }
    return folds;
  }
  if (options.train.empty() || options.test.empty()) {
    return absl::InvalidArgumentError("--train and --test go together");
  }
  Fold fold;
  for (const auto* names : {&options.train, &options.test}) {
    for (const std::string& name : *names) {
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        return absl::InvalidArgumentError(absl::StrCat("unknown device \"", name, "\""));
      }
      (names == &options.train ? fold.references : fold.tests).push_back(it->second);
    }
  }
  folds.push_back(std::move(fold));
  return folds;
}

AccuracyMetrics Score(const DeviceTable& table, const std::vector<int32_t>& archs,
                      const std::vector<double>& measured_by_arch) {
  std::vector<LatencyPrediction> predicted;
  std::vector<double> measured;
  predicted.reserve(archs.size());
  measured.reserve(archs.size());
  for (int32_t a : archs) {
    predicted.push_back(PredictionFromLog(table.log_latency[a], table.log_half_width[a]));
    measured.push_back(measured_by_arch[a]);
  }
  return ComputeAccuracy(predicted, measured);
}

}  // namespace

std::vector<int32_t> DrawSamples(const std::vector<int32_t>& pool, int k, uint64_t seed,
                                 const std::string& device) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull ^ std::hash<std::string>()(device) ^
                      static_cast<uint64_t>(k) << 32);
  std::vector<int32_t> shuffled = pool;
  const size_t take = std::min<size_t>(static_cast<size_t>(k), shuffled.size());
  // Partial Fisher-Yates with our own reduction, so that draws do not depend on the
  // standard library's distribution implementation.
  for (size_t i = 0; i < take; ++i) {
    const size_t j = i + static_cast<size_t>(rng() % (shuffled.size() - i));
    std::swap(shuffled[i], shuffled[j]);
  }
  shuffled.resize(take);
  std::sort(shuffled.begin(), shuffled.end());
  return shuffled;
}

void AppendMeans(const SeedSums& sums, const std::vector<Method>& methods,
                 const std::vector<int>& ks, const std::vector<std::string>& device_order,
                 EvaluationReport* report) {
  for (Method method : methods) {
    for (int k : ks) {
      MeanResult mean{method, k, {}};
      int count = 0;
      for (const std::string& device : device_order) {
        auto it = sums.find({static_cast<int>(method), k, device});
        DeviceResult r = it != sums.end() ? it->second : DeviceResult{};
        r.connected = DivideAccuracy(r.connected, r.seed_count);
        r.disconnected = DivideAccuracy(r.disconnected, r.seed_count);
        AccumulateAccuracy(r.connected, &mean.metrics);
        ++count;
        report->results.push_back(std::move(r));
      }
      mean.metrics = DivideAccuracy(mean.metrics, count);
      report->means.push_back(mean);
    }
  }
}

absl::StatusOr<EvaluationReport> RunEvaluation(const std::vector<DeviceData>& devices,
                                               const EvaluationOptions& options) {
  absl::StatusOr<std::vector<Fold>> folds = MakeFolds(devices, options);
  if (!folds.ok()) return folds.status();
  const Nb201Space& space = Nb201Space::Get();
  const int32_t n = space.size();

  // (method, k, device) -> sums over seeds.
  SeedSums sums;
  EvaluationReport report;
  std::vector<std::string> device_order;
  for (const Fold& fold : *folds) {
    if (fold.references.empty()) return absl::InvalidArgumentError("a fold has no training device");
    absl::StatusOr<std::unique_ptr<ModelTrainer>> trainer =
        ModelTrainer::Create(fold.references, /*seed=*/1, options.maple);
    if (!trainer.ok()) return trainer.status();
    std::optional<MeasurementPlanner> planner;
    if (options.planned_samples) {
      std::vector<DeviceData> references;
      for (const DeviceData* d : fold.references) references.push_back(*d);
      absl::StatusOr<MeasurementPlanner> built = MeasurementPlanner::Build(references, space);
      if (!built.ok()) return built.status();
      planner = *std::move(built);
    }
    for (const DeviceData* test : fold.tests) {
      device_order.push_back(test->device);
      std::vector<double> measured(n, 0);
      std::vector<int32_t> pool, disconnected;
      for (const LatencySample& s : test->samples) {
        measured[s.arch_index] = s.latency_ms;
        (space.IsOutputConnected(s.arch_index) ? pool : disconnected).push_back(s.arch_index);
      }
      std::sort(pool.begin(), pool.end());
      for (int k : options.ks) {
        if (k <= 0 || static_cast<size_t>(k) >= pool.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("k = ", k, " leaves nothing to score on ", test->device));
        }
        for (int seed = options.first_seed; seed < options.first_seed + options.seeds; ++seed) {
          DeviceData target = *test;
          target.samples.clear();
          std::vector<int32_t> drawn =
              planner ? planner->Next({}, k, pool) : DrawSamples(pool, k, seed, test->device);
          std::sort(drawn.begin(), drawn.end());
          for (int32_t a : drawn) target.samples.push_back({a, measured[a]});
          std::vector<int32_t> scored;
          std::set_difference(pool.begin(), pool.end(), drawn.begin(), drawn.end(),
                              std::back_inserter(scored));
          for (Method method : options.methods) {
            absl::StatusOr<DeviceTable> table = (*trainer)->Fit(target, method);
            if (!table.ok()) return table.status();
            DeviceResult& r = sums[{static_cast<int>(method), k, test->device}];
            r.method = method;
            r.k = k;
            r.device = test->device;
            r.seed_count += 1;
            AccumulateAccuracy(Score(*table, scored, measured), &r.connected);
            AccumulateAccuracy(Score(*table, disconnected, measured), &r.disconnected);
            if (k == options.scatter_k && seed == options.first_seed &&
                method == options.methods.back()) {
              ScatterSeries series{method, test->device, {}, {}};
              const size_t step = std::max<size_t>(1, scored.size() / options.scatter_points);
              for (size_t i = 0; i < scored.size(); i += step) {
                series.measured_ms.push_back(measured[scored[i]]);
                series.predicted_ms.push_back(std::exp(table->log_latency[scored[i]]));
              }
              report.scatter.push_back(std::move(series));
            }
          }
        }
      }
    }
  }
  AppendMeans(sums, options.methods, options.ks, device_order, &report);
  return report;
}

namespace {

// `v` as the nearest double to its 6-decimal rounding, so that the JSON writer (shortest
// round trip) prints those decimals: the figures keep the precision they always had.
double SixDecimals(double v) {
  double rounded = v;
  if (std::isfinite(v) && !absl::SimpleAtod(absl::StrFormat("%.6f", v), &rounded)) rounded = v;
  return rounded;
}

nlohmann::ordered_json MetricsJson(const AccuracyMetrics& m) {
  return {{"spearman", SixDecimals(m.spearman)},
          {"acc5", SixDecimals(m.acc5)},
          {"acc10", SixDecimals(m.acc10)},
          {"mape", SixDecimals(m.mape)},
          {"coverage90", SixDecimals(m.coverage90)}};
}

}  // namespace

std::string ReportJson(const EvaluationReport& report) {
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const DeviceResult& r : report.results) {
    nlohmann::ordered_json row = {{"method", MethodName(r.method)},
                                  {"k", r.k},
                                  {"device", r.device},
                                  {"seed_count", r.seed_count}};
    row.update(MetricsJson(r.connected));
    row["disconnected"] = MetricsJson(r.disconnected);
    results.push_back(std::move(row));
  }
  nlohmann::ordered_json means = nlohmann::ordered_json::array();
  for (const MeanResult& m : report.means) {
    nlohmann::ordered_json row = {{"method", MethodName(m.method)}, {"k", m.k}};
    row.update(MetricsJson(m.metrics));
    means.push_back(std::move(row));
  }
  nlohmann::ordered_json out = {{"results", std::move(results)}, {"means", std::move(means)}};
  return out.dump(2) + "\n";
}

std::string ReportMarkdown(const EvaluationReport& report, const std::string& command) {
  std::string out = absl::StrCat("Command: `", command, "`\n\n");
  out += "| method | k | Spearman ρ | ±5 % | ±10 % | MAPE | 90 % coverage |\n";
  out += "|---|---:|---:|---:|---:|---:|---:|\n";
  for (const MeanResult& m : report.means) {
    absl::StrAppendFormat(&out, "| %s | %d | %.3f | %.3f | %.3f | %.1f %% | %.3f |\n",
                          MethodName(m.method), m.k, m.metrics.spearman, m.metrics.acc5,
                          m.metrics.acc10, 100 * m.metrics.mape, m.metrics.coverage90);
  }
  std::set<int> ks;
  std::vector<Method> methods;
  std::vector<std::string> devices;
  for (const DeviceResult& r : report.results) {
    ks.insert(r.k);
    if (std::find(methods.begin(), methods.end(), r.method) == methods.end()) {
      methods.push_back(r.method);
    }
    if (std::find(devices.begin(), devices.end(), r.device) == devices.end()) {
      devices.push_back(r.device);
    }
  }
  for (int k : ks) {
    absl::StrAppend(
        &out, "\nPer device at k = ", k,
        " (Spearman ρ / ±10 %; disconnected cells: MAPE of the last method)\n\n| device |");
    for (Method m : methods) absl::StrAppend(&out, " ", MethodName(m), " |");
    out += " disconnected MAPE |\n|---|";
    for (size_t i = 0; i <= methods.size(); ++i) out += "---:|";
    out += "\n";
    for (const std::string& device : devices) {
      absl::StrAppend(&out, "| ", device, " |");
      double disconnected_mape = 0;
      for (Method m : methods) {
        for (const DeviceResult& r : report.results) {
          if (r.k != k || r.method != m || r.device != device) continue;
          absl::StrAppendFormat(&out, " %.3f / %.3f |", r.connected.spearman, r.connected.acc10);
          disconnected_mape = r.disconnected.mape;
        }
      }
      absl::StrAppendFormat(&out, " %.1f %% |\n", 100 * disconnected_mape);
    }
  }
  return out;
}

namespace {

constexpr const char* kColours[] = {"#7f7f7f", "#1f77b4", "#2ca02c",
                                    "#ff7f0e", "#d62728", "#9467bd"};

std::string SvgText(double x, double y, const std::string& text, const char* anchor = "middle") {
  return absl::StrFormat(
      "<text x=\"%.1f\" y=\"%.1f\" font-family=\"sans-serif\" font-size=\"12\" "
      "text-anchor=\"%s\">%s</text>\n",
      x, y, anchor, text);
}

}  // namespace

std::string ScatterSvg(const ScatterSeries& series) {
  constexpr double kSize = 420, kMargin = 50, kPlot = kSize - 2 * kMargin;
  double lo = 1e300, hi = -1e300;
  for (size_t i = 0; i < series.measured_ms.size(); ++i) {
    for (double v : {series.measured_ms[i], series.predicted_ms[i]}) {
      lo = std::min(lo, std::log10(v));
      hi = std::max(hi, std::log10(v));
    }
  }
  if (!(hi > lo)) hi = lo + 1;
  const double pad = 0.03 * (hi - lo);
  lo -= pad;
  hi += pad;
  auto px = [&](double ms) { return kMargin + kPlot * (std::log10(ms) - lo) / (hi - lo); };
  auto py = [&](double ms) { return kSize - kMargin - kPlot * (std::log10(ms) - lo) / (hi - lo); };
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
      "stroke=\"black\"/>\n",
      static_cast<int>(kSize), static_cast<int>(kSize), kMargin, kMargin, kPlot, kPlot);
  // y = x and the +-10 % band.
  const double a = std::pow(10, lo), b = std::pow(10, hi);
  for (double f : {1.0, 1.1, 1 / 1.1}) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                          "stroke-dasharray=\"%s\"/>\n",
                          px(a), py(a * f), px(b), py(b * f), f == 1.0 ? "black" : "#999",
                          f == 1.0 ? "none" : "4 3");
  }
  for (double e = std::ceil(lo * 2) / 2; e <= hi; e += 0.5) {
    const double v = std::pow(10, e);
    const std::string label = absl::StrFormat("%.3g", v);
    svg += SvgText(px(v), kSize - kMargin + 16, label);
    svg += SvgText(kMargin - 6, py(v) + 4, label, "end");
  }
  for (size_t i = 0; i < series.measured_ms.size(); ++i) {
    absl::StrAppendFormat(&svg,
                          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.6\" fill=\"#1f77b4\" "
                          "fill-opacity=\"0.5\"/>\n",
                          px(series.measured_ms[i]), py(series.predicted_ms[i]));
  }
  svg += SvgText(kSize / 2, kSize - 12, "measured latency (ms)");
  svg += absl::StrFormat(
      "<text x=\"14\" y=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\" "
      "text-anchor=\"middle\" transform=\"rotate(-90 14 %.0f)\">predicted (ms)</text>\n",
      kSize / 2, kSize / 2);
  svg += SvgText(kSize / 2, 30,
                 absl::StrCat(series.device, ": ", MethodName(series.method), " (dashed: ±10 %)"));
  svg += "</svg>\n";
  return svg;
}

std::string AccuracyVsKSvg(const EvaluationReport& report) {
  constexpr double kPanelW = 360, kPanelH = 300, kMargin = 50;
  std::vector<int> ks;
  std::vector<Method> methods;
  for (const MeanResult& m : report.means) {
    if (std::find(ks.begin(), ks.end(), m.k) == ks.end()) ks.push_back(m.k);
    if (std::find(methods.begin(), methods.end(), m.method) == methods.end()) {
      methods.push_back(m.method);
    }
  }
  std::sort(ks.begin(), ks.end());
  const double width = 2 * (kPanelW + kMargin) + 140;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, kPanelH + 2 * kMargin);
  struct Panel {
    const char* title;
    double AccuracyMetrics::*field;
  };
  const Panel panels[] = {{"Spearman ρ", &AccuracyMetrics::spearman},
                          {"±10 % accuracy", &AccuracyMetrics::acc10}};
  for (int p = 0; p < 2; ++p) {
    const double x0 = kMargin + p * (kPanelW + kMargin), y0 = kMargin;
    double lo = 1, hi = 0;
    for (const MeanResult& m : report.means) {
      lo = std::min(lo, m.metrics.*(panels[p].field));
      hi = std::max(hi, m.metrics.*(panels[p].field));
    }
    lo = std::floor(lo * 20) / 20;
    hi = std::min(1.0, std::ceil(hi * 20) / 20);
    if (!(hi > lo)) hi = lo + 0.05;
    const double klo = std::log(ks.front()), khi = std::log(ks.back());
    auto px = [&](int k) {
      return x0 + (khi > klo ? kPanelW * (std::log(k) - klo) / (khi - klo) : kPanelW / 2);
    };
    auto py = [&](double v) { return y0 + kPanelH * (1 - (v - lo) / (hi - lo)); };
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                          "fill=\"none\" stroke=\"black\"/>\n",
                          x0, y0, kPanelW, kPanelH);
    svg += SvgText(x0 + kPanelW / 2, y0 - 12, panels[p].title);
    for (int k : ks) svg += SvgText(px(k), y0 + kPanelH + 16, absl::StrCat("k=", k));
    for (double v = lo; v <= hi + 1e-9; v += 0.05) {
      svg += SvgText(x0 - 6, py(v) + 4, absl::StrFormat("%.2f", v), "end");
    }
    for (size_t mi = 0; mi < methods.size(); ++mi) {
      std::string points;
      for (int k : ks) {
        for (const MeanResult& m : report.means) {
          if (m.method == methods[mi] && m.k == k) {
            absl::StrAppendFormat(&points, "%.1f,%.1f ", px(k), py(m.metrics.*(panels[p].field)));
          }
        }
      }
      absl::StrAppendFormat(&svg,
                            "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                            "stroke-width=\"2\"/>\n",
                            points, kColours[mi % 6]);
    }
  }
  for (size_t mi = 0; mi < methods.size(); ++mi) {
    const double x = 2 * (kPanelW + kMargin) + 20, y = kMargin + 20 + 20 * mi;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                          "stroke-width=\"2\"/>\n",
                          x, y, x + 20, y, kColours[mi % 6]);
    svg += SvgText(x + 26, y + 4, MethodName(methods[mi]), "start");
  }
  svg += "</svg>\n";
  return svg;
}

std::string ErrorHistogramSvg(const std::vector<double>& relative_errors) {
  // 5 % bins from -50 % to +50 %, plus one bin for everything beyond on each side.
  constexpr int kInner = 20;
  constexpr double kBin = 0.05, kWidth = 640, kHeight = 320, kMargin = 50;
  std::vector<int> counts(kInner + 2, 0);
  for (double e : relative_errors) {
    int bin = kInner + 1;
    if (e < -0.5) {
      bin = 0;
    } else if (e < 0.5) {
      bin = std::min(kInner, 1 + static_cast<int>(std::floor((e + 0.5) / kBin)));
    }
    counts[bin]++;
  }
  const int top = std::max(1, *std::max_element(counts.begin(), counts.end()));
  const double plot_w = kWidth - 2 * kMargin, plot_h = kHeight - 2 * kMargin;
  const double bar_w = plot_w / counts.size();
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
      "stroke=\"black\"/>\n",
      kWidth, kHeight, kMargin, kMargin, plot_w, plot_h);
  for (size_t i = 0; i < counts.size(); ++i) {
    const double h = plot_h * counts[i] / top;
    const bool outer = i == 0 || i + 1 == counts.size();
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\"/>\n",
                          kMargin + i * bar_w + 1, kMargin + plot_h - h, bar_w - 2, h,
                          outer ? kColours[4] : kColours[1]);
  }
  for (int p = -50; p <= 50; p += 25) {
    const double x = kMargin + bar_w * (1 + (p + 50) / 100.0 * kInner);
    svg += SvgText(x, kHeight - kMargin + 16, absl::StrCat(p, " %"));
  }
  svg += SvgText(kMargin - 6, kMargin + 4, absl::StrCat(top), "end");
  svg += SvgText(kMargin - 6, kHeight - kMargin + 4, "0", "end");
  svg += SvgText(kWidth / 2, kHeight - 12, "predicted / measured − 1");
  svg += SvgText(kWidth / 2, 30, absl::StrCat(relative_errors.size(), " architectures"));
  svg += "</svg>\n";
  return svg;
}

std::string WeightsSvg(const std::vector<std::pair<std::string, double>>& bars,
                       const std::string& axis) {
  constexpr double kWidth = 640, kRow = 24, kLabel = 160, kMargin = 30;
  const double height = 2 * kMargin + kRow * std::max<size_t>(1, bars.size());
  double top = 0;
  for (const auto& b : bars) top = std::max(top, b.second);
  if (!(top > 0)) top = 1;
  const double plot_w = kWidth - kLabel - 2 * kMargin;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      kWidth, height);
  for (size_t i = 0; i < bars.size(); ++i) {
    const double y = kMargin + i * kRow;
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\"/>\n",
                          kMargin + kLabel, y + 3, plot_w * bars[i].second / top, kRow - 6,
                          kColours[1]);
    svg += SvgText(kMargin + kLabel - 6, y + kRow / 2 + 4, bars[i].first, "end");
    svg += SvgText(kMargin + kLabel + plot_w * bars[i].second / top + 4, y + kRow / 2 + 4,
                   absl::StrFormat("%.3f", bars[i].second), "start");
  }
  svg += SvgText(kMargin + kLabel + plot_w / 2, height - 8, axis);
  svg += "</svg>\n";
  return svg;
}

}  // namespace maplex::core

#include "core/eval/function_evaluation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace maplex::core {
namespace {

using Column = SpaceLatencyTable::Column;

struct Fold {
  std::string name;
  std::vector<int> references;  // device columns
  std::vector<int> tests;
};

absl::StatusOr<std::vector<Fold>> MakeFolds(const SpaceLatencyTable& table,
                                            const FunctionEvaluationOptions& options) {
  std::vector<Fold> folds;
  const int n = static_cast<int>(table.devices.size());
  if (options.train.empty() && options.test.empty()) {
    std::vector<std::string> hardware;
    for (const Column& d : table.devices) {
      if (std::find(hardware.begin(), hardware.end(), d.hardware) == hardware.end()) {
        hardware.push_back(d.hardware);
      }
    }
    for (const std::string& h : hardware) {
      Fold fold{h, {}, {}};
      for (int d = 0; d < n; ++d) {
        (table.devices[d].hardware == h ? fold.tests : fold.references).push_back(d);
      }
      folds.push_back(std::move(fold));
    }
    return folds;
  }
  if (options.train.empty() || options.test.empty()) {
    return absl::InvalidArgumentError("--train and --test go together");
  }
  Fold fold{"split", {}, {}};
  for (const auto* names : {&options.train, &options.test}) {
    for (const std::string& name : *names) {
      int found = -1;
      for (int d = 0; d < n; ++d) {
        if (table.devices[d].device == name) found = d;
      }
      if (found < 0)
        return absl::InvalidArgumentError(absl::StrCat("unknown device \"", name, "\""));
      (names == &options.train ? fold.references : fold.tests).push_back(found);
    }
  }
  folds.push_back(std::move(fold));
  return folds;
}

// Everything about the rows the protocol needs, computed once.
struct Rows {
  std::vector<int> train;       // rows any device may train on
  std::vector<int> scored;      // held-out rows (empty: no holdout)
  std::vector<bool> connected;  // per row
};

// The variant of a method a fold runs: maplex's switches are chosen per k.
struct Variant {
  Method method;
  bool virtual_examples = true;
  double baseline_mix = 0;
};

// Under nesting, maplex's switches are the variant's (virtual examples at any k, blend share
// including 0) instead of the config's sample-count gates.
FunctionConfig ConfigFor(const Variant& v, const FunctionConfig& base, bool nested) {
  FunctionConfig c = base;
  if (!nested || v.method != Method::kMapleX) return c;
  c.virtual_min_samples = v.virtual_examples ? 1 : 1 << 30;
  c.baseline_mix = v.baseline_mix;
  c.baseline_mix_min_samples = 1;
  return c;
}

std::vector<Variant> Candidates(Method method, const FunctionConfig& base, bool nested) {
  if (method != Method::kMapleX || !nested) return {{method, true, base.baseline_mix}};
  std::vector<Variant> out;
  for (bool ve : {false, true}) {
    for (double mix : {0.0, 0.25, 0.5, 0.75}) out.push_back({method, ve, mix});
  }
  return out;
}

struct Fitted {
  FunctionDevice device;
};

std::vector<FunctionSample> SamplesOf(const SpaceLatencyTable& table, const Column& column,
                                      const std::vector<int32_t>& rows) {
  std::vector<FunctionSample> out;
  for (int32_t r : rows) out.push_back({table.archs[r], column.latency_ms[r]});
  return out;
}

}  // namespace

absl::StatusOr<FunctionEvaluationReport> RunFunctionEvaluation(
    const SpaceLatencyTable& table, const FunctionEvaluationOptions& options) {
  if (table.space == nullptr || table.devices.empty()) {
    return absl::InvalidArgumentError("empty latency table");
  }
  if (!(options.arch_holdout >= 0 && options.arch_holdout < 1)) {
    return absl::InvalidArgumentError("arch holdout must be in [0, 1)");
  }
  absl::StatusOr<std::vector<Fold>> folds = MakeFolds(table, options);
  if (!folds.ok()) return folds.status();
  const ArchitectureSpace& space = *table.space;
  const FeatureMap phi(space);
  const int n_rows = static_cast<int>(table.archs.size());

  // Rows: the holdout first (no device trains on it), then the connected flags.
  Rows rows;
  rows.connected.resize(n_rows);
  for (int r = 0; r < n_rows; ++r) rows.connected[r] = space.IsOutputConnected(table.archs[r]);
  std::vector<bool> held(n_rows, false);
  if (!options.test_archs.empty()) {
    absl::flat_hash_map<Architecture, int> row_of;
    for (int r = 0; r < n_rows; ++r) row_of[table.archs[r]] = r;
    for (const Architecture& a : options.test_archs) {
      auto it = row_of.find(a);
      if (it == row_of.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("test architecture ", a.ToString(), " is not in the latency table"));
      }
      held[it->second] = true;
    }
  } else if (options.arch_holdout > 0) {
    std::vector<int32_t> all(n_rows);
    for (int r = 0; r < n_rows; ++r) all[r] = r;
    const int count = static_cast<int>(std::lround(options.arch_holdout * n_rows));
    for (int32_t r : DrawSamples(all, count, options.holdout_seed, "arch-holdout")) held[r] = true;
  }
  for (int r = 0; r < n_rows; ++r) (held[r] ? rows.scored : rows.train).push_back(r);
  const bool holdout = !rows.scored.empty();

  // Every device's own fit on its connected, measured training rows (a reference in every
  // fold it is not held out of; also the ceiling when it is the target).
  std::vector<ReferenceFit> fits;
  for (const Column& c : table.devices) {
    std::vector<Architecture> archs;
    std::vector<double> ms;
    for (int r : rows.train) {
      if (rows.connected[r] && std::isfinite(c.latency_ms[r])) {
        archs.push_back(table.archs[r]);
        ms.push_back(c.latency_ms[r]);
      }
    }
    fits.push_back(FitReference(phi, c.device, c.hardware, c.descriptor, archs, ms));
  }
  std::vector<Architecture> pool;
  for (const Architecture& a : space.Sample(options.pool_size * 2, options.pool_seed)) {
    if (space.IsOutputConnected(a) && static_cast<int>(pool.size()) < options.pool_size) {
      pool.push_back(a);
    }
  }

  // Per device: connected training rows it measured (the k samples come from these), and
  // the rows scored (connected / disconnected).
  auto sample_pool = [&](const Column& c) {
    std::vector<int32_t> out;
    for (int r : rows.train) {
      if (rows.connected[r] && std::isfinite(c.latency_ms[r])) out.push_back(r);
    }
    return out;
  };

  FunctionEvaluationReport out;
  out.scored_rows = static_cast<int>(rows.scored.size());
  SeedSums sums;
  std::vector<std::string> device_order;

  auto predict_rows = [&](const FunctionFitter& fitter, const FunctionDevice& d,
                          const std::vector<int32_t>& which, const Column& c,
                          std::vector<LatencyPrediction>* pred, std::vector<double>* meas) {
    pred->clear();
    meas->clear();
    const double lo = std::exp(-d.log_half_width), hi = std::exp(d.log_half_width);
    for (int32_t r : which) {
      const double y = fitter.PredictMs(d, table.archs[r]);
      pred->push_back({y, y * lo, y * hi});
      meas->push_back(c.latency_ms[r]);
    }
  };

  for (const Fold& fold : *folds) {
    if (fold.references.empty()) return absl::InvalidArgumentError("a fold has no training device");
    std::vector<ReferenceFit> refs;
    for (int d : fold.references) refs.push_back(fits[d]);
    const FunctionFitter fitter(phi, refs, pool);

    // Nested: leave each training hardware out of the training devices, fit every candidate
    // variant on k samples, and score it on (a subset of) that device's training rows.
    // variant key -> per k: (sum of rho + acc10 over inner targets, count, |log errors|).
    struct Inner {
      double score = 0;
      int count = 0;
      std::vector<double> abs_log_errors;
    };
    std::map<std::tuple<int, bool, double, int>, Inner> inner;
    std::vector<Variant> all_variants;
    for (Method m : options.methods) {
      for (const Variant& v : Candidates(m, options.config, options.nested)) {
        all_variants.push_back(v);
      }
    }
    if (options.nested) {
      std::vector<std::string> inner_hw;
      for (int d : fold.references) {
        if (std::find(inner_hw.begin(), inner_hw.end(), table.devices[d].hardware) ==
            inner_hw.end()) {
          inner_hw.push_back(table.devices[d].hardware);
        }
      }
      for (const std::string& h : inner_hw) {
        std::vector<ReferenceFit> inner_refs;
        std::vector<int> inner_targets;
        for (int d : fold.references) {
          if (table.devices[d].hardware == h) {
            inner_targets.push_back(d);
          } else {
            inner_refs.push_back(fits[d]);
          }
        }
        if (inner_refs.empty()) continue;
        const FunctionFitter inner_fitter(phi, inner_refs, pool);
        for (int d : inner_targets) {
          const Column& c = table.devices[d];
          const std::vector<int32_t> spool = sample_pool(c);
          for (int k : options.ks) {
            if (static_cast<size_t>(k) >= spool.size()) continue;
            for (int seed = 0; seed < options.nested_seeds; ++seed) {
              std::vector<int32_t> drawn = DrawSamples(spool, k, 1000 + seed, c.device);
              std::vector<int32_t> rest;
              std::set_difference(spool.begin(), spool.end(), drawn.begin(), drawn.end(),
                                  std::back_inserter(rest));
              rest = DrawSamples(rest, options.nested_rows, 2000 + seed, c.device);
              const std::vector<FunctionSample> samples = SamplesOf(table, c, drawn);
              for (const Variant& v : all_variants) {
                FunctionDevice f = inner_fitter.Fit(v.method, samples, c.descriptor,
                                                    ConfigFor(v, options.config, options.nested));
                std::vector<LatencyPrediction> pred;
                std::vector<double> meas;
                predict_rows(inner_fitter, f, rest, c, &pred, &meas);
                const AccuracyMetrics m = ComputeAccuracy(pred, meas);
                Inner& in =
                    inner[{static_cast<int>(v.method), v.virtual_examples, v.baseline_mix, k}];
                in.score += m.spearman + m.acc10;
                in.count += 1;
                for (size_t i = 0; i < pred.size(); ++i) {
                  in.abs_log_errors.push_back(std::abs(std::log(pred[i].latency_ms / meas[i])));
                }
              }
            }
          }
        }
      }
    }
    // The chosen variant and half width per (method, k).
    std::map<std::pair<int, int>, std::pair<Variant, double>> chosen;
    for (Method m : options.methods) {
      for (int k : options.ks) {
        const std::vector<Variant> cands = Candidates(m, options.config, options.nested);
        Variant best = cands.front();
        double best_score = -1e300;
        double half_width = 0;
        for (const Variant& v : cands) {
          auto it = inner.find({static_cast<int>(m), v.virtual_examples, v.baseline_mix, k});
          if (it == inner.end() || it->second.count == 0) continue;
          const double score = it->second.score / it->second.count;
          if (score > best_score) {
            best_score = score;
            best = v;
            std::vector<double> e = it->second.abs_log_errors;
            const size_t q = static_cast<size_t>(0.9 * (e.size() - 1));
            std::nth_element(e.begin(), e.begin() + q, e.end());
            half_width = e.empty() ? 0 : e[q];
          }
        }
        chosen[{static_cast<int>(m), k}] = {best, half_width};
        out.choices.push_back(
            {fold.name, k, m, half_width, best.virtual_examples, best.baseline_mix});
      }
    }

    for (int t : fold.tests) {
      const Column& c = table.devices[t];
      device_order.push_back(c.device);
      const std::vector<int32_t> spool = sample_pool(c);
      // Scored rows: the holdout, or every measured row but the samples.
      std::vector<int32_t> scored_connected, scored_disconnected;
      for (int r : holdout ? rows.scored : rows.train) {
        if (!std::isfinite(c.latency_ms[r])) continue;
        (rows.connected[r] ? scored_connected : scored_disconnected).push_back(r);
      }
      {  // ceiling: the device's own fit
        FunctionDevice own;
        own.weights = fits[t].weights;
        std::vector<LatencyPrediction> pred;
        std::vector<double> meas;
        predict_rows(fitter, own, scored_connected, c, &pred, &meas);
        out.ceiling.push_back({c.device, ComputeAccuracy(pred, meas)});
      }
      for (int k : options.ks) {
        if (k <= 0 || static_cast<size_t>(k) >= spool.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("k = ", k, " leaves nothing to score on ", c.device));
        }
        for (int seed = 0; seed < options.seeds; ++seed) {
          const std::vector<int32_t> drawn = DrawSamples(spool, k, seed, c.device);
          std::vector<int32_t> connected = scored_connected;
          if (!holdout) {
            std::vector<int32_t> rest;
            std::set_difference(connected.begin(), connected.end(), drawn.begin(), drawn.end(),
                                std::back_inserter(rest));
            connected = std::move(rest);
          }
          const std::vector<FunctionSample> samples = SamplesOf(table, c, drawn);
          for (Method method : options.methods) {
            const auto& [variant, half_width] = chosen[{static_cast<int>(method), k}];
            FunctionDevice f = fitter.Fit(method, samples, c.descriptor,
                                          ConfigFor(variant, options.config, options.nested));
            f.log_half_width = half_width;
            DeviceResult& r = sums[{static_cast<int>(method), k, c.device}];
            r.method = method;
            r.k = k;
            r.device = c.device;
            r.seed_count += 1;
            std::vector<LatencyPrediction> pred;
            std::vector<double> meas;
            predict_rows(fitter, f, connected, c, &pred, &meas);
            AccumulateAccuracy(ComputeAccuracy(pred, meas), &r.connected);
            if (k == options.scatter_k && seed == 0 && method == options.methods.back()) {
              ScatterSeries series{method, c.device, {}, {}};
              const size_t step = std::max<size_t>(1, pred.size() / options.scatter_points);
              for (size_t i = 0; i < pred.size(); i += step) {
                series.measured_ms.push_back(meas[i]);
                series.predicted_ms.push_back(pred[i].latency_ms);
              }
              out.report.scatter.push_back(std::move(series));
            }
            predict_rows(fitter, f, scored_disconnected, c, &pred, &meas);
            AccumulateAccuracy(ComputeAccuracy(pred, meas), &r.disconnected);
          }
        }
      }
    }
  }
  AppendMeans(sums, options.methods, options.ks, device_order, &out.report);
  return out;
}

}  // namespace maplex::core

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

// The variant of a method a fold runs: maplex's settings are chosen per k from a grid.
struct Variant {
  Method method;
  bool virtual_examples = true;
  double baseline_mix = 0;
  double agreement_scale = 0;    // 0: the config's
  double unweighted_share = -1;  // < 0: the config's
  bool adaptive_mix = false;     // baseline_mix scaled per target (FunctionConfig::adaptive_mix)
};

// Under nesting, maplex's settings are the variant's (virtual examples at any k, blend share
// including 0, how sharply agreement selects references and the unweighted floor) instead of
// the config's defaults and sample-count gates.
FunctionConfig ConfigFor(const Variant& v, const FunctionConfig& base, bool nested) {
  FunctionConfig c = base;
  if (!nested || v.method != Method::kMapleX) return c;
  c.virtual_min_samples = v.virtual_examples ? 1 : 1 << 30;
  c.baseline_mix = v.baseline_mix;
  c.baseline_mix_min_samples = 1;
  if (v.agreement_scale > 0) c.agreement_scale = v.agreement_scale;
  if (v.unweighted_share >= 0) c.unweighted_share = v.unweighted_share;
  c.adaptive_mix = v.adaptive_mix ? 1 : 0;
  return c;
}

std::vector<Variant> Candidates(Method method, const FunctionConfig& base, bool nested) {
  if (method != Method::kMapleX || !nested) {
    return {{method, true, base.baseline_mix, base.agreement_scale, base.unweighted_share,
             base.adaptive_mix != 0}};
  }
  std::vector<Variant> out;
  // Blends: a fixed share of the baseline, or a share chosen per target (adaptive).
  // The first candidate is the default: maple+w's settings (no virtual examples, no blend).
  out.push_back({method, false, 0.0, base.agreement_scale, base.unweighted_share, false});
  const std::pair<double, bool> blends[] = {
      {0.0, false}, {0.25, false}, {0.5, false}, {0.5, true}, {1.0, true}};
  for (bool ve : {false, true}) {
    for (const auto& [mix, adaptive] : blends) {
      for (double agreement : {0.035, 0.05, 0.08, 0.12}) {
        for (double floor : {0.1, 0.2}) {
          if (!ve && mix == 0 && !adaptive && agreement == base.agreement_scale &&
              floor == base.unweighted_share) {
            continue;  // the default, already first
          }
          out.push_back({method, ve, mix, agreement, floor, adaptive});
        }
      }
    }
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
  // The nested selection mirrors the protocol: with a holdout, a second seeded share of the
  // training rows (the same share) is held out of fits that only the inner loop uses, and the
  // inner targets are scored on those rows only, so a setting is judged on architectures its
  // references never saw, as it is scored. Without a holdout the inner loop uses `fits`.
  std::vector<bool> inner_held(n_rows, false);
  std::vector<ReferenceFit> inner_fits;
  if (holdout && options.nested) {
    const double share = static_cast<double>(rows.scored.size()) / n_rows;
    const int count = static_cast<int>(std::lround(share * rows.train.size()));
    for (int32_t r : DrawSamples(rows.train, count, options.holdout_seed, "inner-arch-holdout")) {
      inner_held[r] = true;
    }
    for (const Column& c : table.devices) {
      std::vector<Architecture> archs;
      std::vector<double> ms;
      for (int r : rows.train) {
        if (!inner_held[r] && rows.connected[r] && std::isfinite(c.latency_ms[r])) {
          archs.push_back(table.archs[r]);
          ms.push_back(c.latency_ms[r]);
        }
      }
      inner_fits.push_back(FitReference(phi, c.device, c.hardware, c.descriptor, archs, ms));
    }
  }
  const std::vector<ReferenceFit>& nested_fits = inner_fits.empty() ? fits : inner_fits;
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
      std::vector<double> scores;  // per inner (target, seed), in one order for every variant
      std::vector<double> abs_log_errors;
    };
    // Keyed by (method, index in Candidates(method), k).
    std::map<std::tuple<int, int, int>, Inner> inner;
    std::vector<std::pair<Variant, int>> all_variants;
    for (Method m : options.methods) {
      const std::vector<Variant> cands = Candidates(m, options.config, options.nested);
      for (size_t i = 0; i < cands.size(); ++i) {
        all_variants.push_back({cands[i], static_cast<int>(i)});
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
            inner_refs.push_back(nested_fits[d]);
          }
        }
        if (inner_refs.empty()) continue;
        const FunctionFitter inner_fitter(phi, inner_refs, pool);
        for (int d : inner_targets) {
          const Column& c = table.devices[d];
          // Samples from the rows the inner fits trained on; scored on the inner holdout
          // (or, without one, on the target's other rows).
          std::vector<int32_t> spool, inner_scored;
          for (int32_t r : sample_pool(c)) (inner_held[r] ? inner_scored : spool).push_back(r);
          for (int k : options.ks) {
            if (static_cast<size_t>(k) >= spool.size()) continue;
            for (int seed = 0; seed < options.nested_seeds; ++seed) {
              std::vector<int32_t> drawn = DrawSamples(spool, k, 1000 + seed, c.device);
              std::vector<int32_t> rest;
              if (inner_fits.empty()) {
                std::set_difference(spool.begin(), spool.end(), drawn.begin(), drawn.end(),
                                    std::back_inserter(rest));
              } else {
                rest = inner_scored;
              }
              rest = DrawSamples(rest, options.nested_rows, 2000 + seed, c.device);
              if (rest.empty()) continue;  // nothing to score (every variant alike)
              const std::vector<FunctionSample> samples = SamplesOf(table, c, drawn);
              for (const auto& [v, index] : all_variants) {
                FunctionDevice f = inner_fitter.Fit(v.method, samples, c.descriptor,
                                                    ConfigFor(v, options.config, options.nested));
                std::vector<LatencyPrediction> pred;
                std::vector<double> meas;
                predict_rows(inner_fitter, f, rest, c, &pred, &meas);
                const AccuracyMetrics m = ComputeAccuracy(pred, meas);
                Inner& in = inner[{static_cast<int>(v.method), index, k}];
                in.score += m.spearman + m.acc10;
                in.count += 1;
                in.scores.push_back(m.spearman + m.acc10);
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
        // Candidate 0 is the default. Another is taken only if it beats the default by more
        // than one standard error of the paired per-(target, seed) difference, and then the
        // best of those: with 80 candidates and differences of a few thousandths, the plain
        // argmax mostly picks inner noise.
        int best_index = 0;
        double best_score = -1e300;
        const auto def = inner.find({static_cast<int>(m), 0, k});
        for (size_t i = 0; i < cands.size(); ++i) {
          auto it = inner.find({static_cast<int>(m), static_cast<int>(i), k});
          if (it == inner.end() || it->second.count == 0) continue;
          const double score = it->second.score / it->second.count;
          bool clear = i == 0;
          if (i > 0 && def != inner.end() &&
              def->second.scores.size() == it->second.scores.size()) {
            const size_t n = it->second.scores.size();
            double mean = 0, sq = 0;
            for (size_t j = 0; j < n; ++j) mean += it->second.scores[j] - def->second.scores[j];
            mean /= n;
            for (size_t j = 0; j < n; ++j) {
              const double d = it->second.scores[j] - def->second.scores[j] - mean;
              sq += d * d;
            }
            const double se = n > 1 ? std::sqrt(sq / (n - 1) / n) : 1e300;
            clear = mean > se;
          }
          if (clear && score > best_score) {
            best_score = score;
            best_index = static_cast<int>(i);
          }
        }
        const Variant best = cands[best_index];
        double half_width = 0;
        auto it = inner.find({static_cast<int>(m), best_index, k});
        if (it != inner.end() && !it->second.abs_log_errors.empty()) {
          std::vector<double> e = it->second.abs_log_errors;
          const size_t q = static_cast<size_t>(0.9 * (e.size() - 1));
          std::nth_element(e.begin(), e.begin() + q, e.end());
          half_width = e[q];
        }
        chosen[{static_cast<int>(m), k}] = {best, half_width};
        FoldChoice choice{fold.name,
                          k,
                          m,
                          half_width,
                          best.virtual_examples,
                          best.baseline_mix,
                          best.adaptive_mix,
                          ConfigFor(best, options.config, options.nested).agreement_scale,
                          ConfigFor(best, options.config, options.nested).unweighted_share};
        if (def != inner.end() && def->second.count > 0) {
          choice.inner_default = def->second.score / def->second.count;
          choice.inner_chosen = it->second.score / it->second.count;
        }
        out.choices.push_back(choice);
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
        for (int seed = options.first_seed; seed < options.first_seed + options.seeds; ++seed) {
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
            if (k == options.scatter_k && seed == options.first_seed &&
                method == options.methods.back()) {
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

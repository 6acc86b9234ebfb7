#include "core/model/function_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/eval/metrics.h"
#include "core/hardware/descriptor_features.h"

namespace maplex::core {
namespace {

// maplex's switches, and (without samples) the spec similarity's bandwidth; the other
// methods have one variant.
struct Variant {
  bool virtual_examples = false;
  double baseline_mix = 0;
  double spec_bandwidth = 0;  // 0: the config's
};

// Without samples the spec alone weights the prior, and how sharply it should is chosen like
// the switches: the config's bandwidth, or sharper.
constexpr double kPriorBandwidths[] = {0.5, 0.25, 0.125, 0.0625};

std::vector<Variant> Candidates(Method method, const FunctionConfig& base, int k) {
  const bool weighted = method == Method::kMapleWeights || method == Method::kMapleX;
  if (k == 0) {
    std::vector<Variant> out = {{true, base.baseline_mix, 0}};
    if (weighted) {
      for (double b : kPriorBandwidths) out.push_back({true, base.baseline_mix, b});
    }
    return out;
  }
  if (method != Method::kMapleX) return {{true, base.baseline_mix}};
  std::vector<Variant> out;
  for (bool ve : {false, true}) {
    for (double mix : {0.0, 0.25, 0.5, 0.75}) out.push_back({ve, mix});
  }
  return out;
}

// As the nested evaluation applies a variant (function_evaluation.cc, ConfigFor).
FunctionConfig ConfigFor(Method method, const Variant& v, const FunctionConfig& base) {
  FunctionConfig c = base;
  if (v.spec_bandwidth > 0) c.spec_bandwidth = v.spec_bandwidth;
  if (method != Method::kMapleX) return c;
  c.virtual_min_samples = v.virtual_examples ? 1 : 1 << 30;
  c.baseline_mix = v.baseline_mix;
  c.baseline_mix_min_samples = 1;
  return c;
}

// A portable seed from (seed, device, salt): FNV-1a of the name, then splitmix.
uint64_t DrawSeed(uint64_t seed, const std::string& device, uint64_t salt) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : device) h = (h ^ c) * 1099511628211ull;
  uint64_t state = seed ^ h ^ (salt * 0x9E3779B97F4A7C15ull);
  return SplitMix64(state);
}

// The first `take` of a seeded permutation of 0..n-1 (partial Fisher-Yates, own reduction).
std::vector<int> DrawIndices(int n, int take, uint64_t seed) {
  std::vector<int> idx(n);
  for (int i = 0; i < n; ++i) idx[i] = i;
  take = std::min(take, n);
  uint64_t state = seed;
  for (int i = 0; i < take; ++i) {
    const int j = i + static_cast<int>(SplitMix64(state) % static_cast<uint64_t>(n - i));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(take);
  return idx;
}

// The 0.9 quantile as the evaluation takes it (element floor(0.9 (n - 1)) in order).
double Quantile90(std::vector<double> e) {
  if (e.empty()) return 0;
  const size_t q = static_cast<size_t>(0.9 * (e.size() - 1));
  std::nth_element(e.begin(), e.begin() + q, e.end());
  return e[q];
}

void AppendBytes(std::string* out, const void* p, size_t n) {
  out->append(static_cast<const char*>(p), n);
}

// Everything of a device a fit reads (not its id, the map key): hardware, the descriptor as
// the encoder sees it, and the samples.
std::string DeviceKey(const SpaceDeviceData& d) {
  std::string key = d.hardware;
  key.push_back('\0');
  for (const std::vector<double>& v :
       {RawSpecVector(d.descriptor.spec), RawCounterVector(d.descriptor)}) {
    const uint64_t n = v.size();
    AppendBytes(&key, &n, sizeof(n));
    for (double x : v) {
      if (std::isnan(x)) x = std::numeric_limits<double>::quiet_NaN();  // one NaN pattern
      AppendBytes(&key, &x, sizeof(x));
    }
  }
  for (const FunctionSample& s : d.samples) {
    const absl::Span<const uint8_t> c = s.arch.choices();
    AppendBytes(&key, c.data(), c.size());
    AppendBytes(&key, &s.latency_ms, sizeof(s.latency_ms));
  }
  return key;
}

bool HasAny(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return !std::isnan(x); });
}

}  // namespace

struct FunctionModelTrainer::Cache {
  explicit Cache(const ArchitectureSpace& space) : phi(space) {}

  FeatureMap phi;
  std::vector<Architecture> pool;

  struct Reference {
    std::string key;
    ReferenceFit fit;
    double half_width = 0;
    std::vector<FunctionSample> connected;  // calibration draws from these
  };
  std::map<std::string, Reference> references;  // by device id

  // State of one reference set (cleared when it changes).
  std::vector<std::string> reference_set;  // id + key of each reference, in order
  std::vector<const Reference*> ordered;   // the references, in model order
  std::unique_ptr<FunctionFitter> fitter;

  struct InnerFold {
    std::string held_out;  // hardware (or device) left out
    std::unique_ptr<FunctionFitter> fitter;
    std::vector<int> targets;  // indices into `ordered`
  };
  bool inner_built = false;
  std::string inner_basis;  // "hardware" or "device"
  std::vector<InnerFold> inner;

  struct Calibration {
    bool valid = false;
    Variant variant;
    double half_width = 0;
  };
  std::map<int, Calibration> calibrations;  // by calibrated sample count

  struct Target {
    std::string key;
    FunctionDevice fit;
    FunctionDeviceSummary summary;
  };
  std::map<std::string, Target> targets;  // by device id

  void ResetReferenceSet() {
    fitter.reset();
    inner_built = false;
    inner.clear();
    calibrations.clear();
    targets.clear();
  }
};

FunctionModelTrainer::FunctionModelTrainer(const ArchitectureSpace& space,
                                           FunctionTrainOptions options)
    : space_(&space), options_(std::move(options)), cache_(std::make_unique<Cache>(space)) {
  // The evaluation's pool: connected members of a seeded sample.
  for (const Architecture& a : space.Sample(options_.pool_size * 2, options_.seed)) {
    if (space.IsOutputConnected(a) && static_cast<int>(cache_->pool.size()) < options_.pool_size) {
      cache_->pool.push_back(a);
    }
  }
  std::sort(options_.calibration_ks.begin(), options_.calibration_ks.end());
  options_.calibration_ks.erase(
      std::unique(options_.calibration_ks.begin(), options_.calibration_ks.end()),
      options_.calibration_ks.end());
  if (options_.calibration_ks.empty() || options_.calibration_ks.front() != 0) {
    options_.calibration_ks.insert(options_.calibration_ks.begin(), 0);
  }
}

FunctionModelTrainer::~FunctionModelTrainer() = default;
FunctionModelTrainer::FunctionModelTrainer(FunctionModelTrainer&&) noexcept = default;
FunctionModelTrainer& FunctionModelTrainer::operator=(FunctionModelTrainer&&) noexcept = default;

absl::StatusOr<TrainedFunctionModel> FunctionModelTrainer::Train(
    const std::vector<SpaceDeviceData>& devices) {
  stats_ = {};
  Cache& cache = *cache_;
  const std::string space_name(space_->name());

  // Validation first: nothing is fitted (or cached) from bad input.
  {
    absl::flat_hash_set<std::string> ids;
    for (const SpaceDeviceData& d : devices) {
      if (d.device.empty()) return absl::InvalidArgumentError("a device has an empty id");
      if (!ids.insert(d.device).second) {
        return absl::InvalidArgumentError(absl::StrCat("device \"", d.device, "\" appears twice"));
      }
      absl::flat_hash_set<Architecture> seen;
      for (size_t i = 0; i < d.samples.size(); ++i) {
        const FunctionSample& s = d.samples[i];
        if (s.arch.space() != space_) {
          return absl::InvalidArgumentError(
              absl::StrCat("device \"", d.device, "\" sample ", i, ": architecture of space ",
                           s.arch.space() == nullptr ? std::string("(none)")
                                                     : std::string(s.arch.space()->name()),
                           ", this model is of space ", space_name));
        }
        if (!std::isfinite(s.latency_ms) || s.latency_ms <= 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("device \"", d.device, "\" sample ", i, " (", s.arch.ToString(),
                           "): latency ", s.latency_ms, " ms is not a finite positive number"));
        }
        if (!seen.insert(s.arch).second) {
          return absl::InvalidArgumentError(absl::StrCat("device \"", d.device, "\" sample ", i,
                                                         ": architecture ", s.arch.ToString(),
                                                         " measured twice"));
        }
      }
    }
  }

  // References, sorted by id.
  std::vector<const SpaceDeviceData*> refs, others;
  for (const SpaceDeviceData& d : devices) {
    (static_cast<int>(d.samples.size()) >= options_.reference_min_samples ? refs : others)
        .push_back(&d);
  }
  auto by_id = [](const SpaceDeviceData* a, const SpaceDeviceData* b) {
    return a->device < b->device;
  };
  std::sort(refs.begin(), refs.end(), by_id);
  std::sort(others.begin(), others.end(), by_id);
  if (refs.empty()) {
    const SpaceDeviceData* most = nullptr;
    for (const SpaceDeviceData& d : devices) {
      if (most == nullptr || d.samples.size() > most->samples.size()) most = &d;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "no reference device in space ", space_name, ": a reference needs at least ",
        options_.reference_min_samples, " samples",
        most == nullptr ? std::string(", and no device was given")
                        : absl::StrCat(", the most any device has is ", most->samples.size(),
                                       " (\"", most->device, "\")")));
  }

  // Reference fits, reused when the device's samples and descriptor are unchanged.
  std::map<std::string, Cache::Reference> references;
  std::vector<std::string> reference_set;
  for (const SpaceDeviceData* d : refs) {
    std::string key = DeviceKey(*d);
    reference_set.push_back(absl::StrCat(d->device, std::string(1, '\0'), key));
    auto it = cache.references.find(d->device);
    if (it != cache.references.end() && it->second.key == key) {
      references.emplace(d->device, std::move(it->second));
      ++stats_.reference_fits_cached;
      continue;
    }
    Cache::Reference r;
    r.key = std::move(key);
    for (const FunctionSample& s : d->samples) {
      if (space_->IsOutputConnected(s.arch)) r.connected.push_back(s);
    }
    // Interval: fit without every fifth sample, score those; then fit on all.
    std::vector<Architecture> fit_archs, all_archs;
    std::vector<double> fit_ms, all_ms;
    for (size_t i = 0; i < r.connected.size(); ++i) {
      all_archs.push_back(r.connected[i].arch);
      all_ms.push_back(r.connected[i].latency_ms);
      if (i % 5 != 4) {
        fit_archs.push_back(r.connected[i].arch);
        fit_ms.push_back(r.connected[i].latency_ms);
      }
    }
    const ReferenceFit partial = FitReference(cache.phi, d->device, d->hardware, d->descriptor,
                                              fit_archs, fit_ms, options_.reference_lambda);
    std::vector<double> errors;
    for (size_t i = 4; i < r.connected.size(); i += 5) {
      const double y = std::max(cache.phi.Dot(r.connected[i].arch, partial.weights.data()), 1e-6);
      errors.push_back(std::abs(std::log(y / r.connected[i].latency_ms)));
    }
    r.half_width = Quantile90(std::move(errors));
    r.fit = FitReference(cache.phi, d->device, d->hardware, d->descriptor, all_archs, all_ms,
                         options_.reference_lambda);
    references.emplace(d->device, std::move(r));
    ++stats_.reference_fits;
  }
  cache.references = std::move(references);

  if (reference_set != cache.reference_set || cache.fitter == nullptr) {
    cache.ResetReferenceSet();
    cache.reference_set = std::move(reference_set);
    cache.ordered.clear();
    std::vector<ReferenceFit> fits;
    for (const SpaceDeviceData* d : refs) {
      const Cache::Reference& r = cache.references.at(d->device);
      cache.ordered.push_back(&r);
      fits.push_back(r.fit);
    }
    cache.fitter = std::make_unique<FunctionFitter>(cache.phi, std::move(fits), cache.pool);
  } else {
    // The map entries moved; re-point (same order, same content).
    for (size_t i = 0; i < refs.size(); ++i)
      cache.ordered[i] = &cache.references.at(refs[i]->device);
    stats_.fitter_cached = true;
  }

  // The inner folds of the calibration: leave each (of at most calibration_max_hardware)
  // reference hardware out; with one hardware, each reference device.
  auto build_inner = [&] {
    cache.inner_built = true;
    std::map<std::string, std::vector<int>> by_hardware;
    for (size_t i = 0; i < cache.ordered.size(); ++i) {
      by_hardware[cache.ordered[i]->fit.hardware].push_back(static_cast<int>(i));
    }
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    if (by_hardware.size() >= 2) {
      cache.inner_basis = "hardware";
      groups.assign(by_hardware.begin(), by_hardware.end());
    } else if (cache.ordered.size() >= 2) {
      cache.inner_basis = "device";
      for (size_t i = 0; i < cache.ordered.size(); ++i) {
        groups.push_back({cache.ordered[i]->fit.device, {static_cast<int>(i)}});
      }
    } else {
      return;  // one reference device: nothing to calibrate on
    }
    const int g = static_cast<int>(groups.size());
    const int take = std::min(g, std::max(options_.calibration_max_hardware, 1));
    for (int i = 0; i < take; ++i) {
      const auto& [name, members] = groups[static_cast<size_t>(i) * g / take];
      Cache::InnerFold fold;
      fold.held_out = name;
      std::vector<ReferenceFit> fits;
      for (size_t r = 0; r < cache.ordered.size(); ++r) {
        if (std::find(members.begin(), members.end(), static_cast<int>(r)) == members.end()) {
          fits.push_back(cache.ordered[r]->fit);
        }
      }
      for (int m : members) {
        if (static_cast<int>(fold.targets.size()) < options_.calibration_devices_per_hardware) {
          fold.targets.push_back(m);
        }
      }
      fold.fitter = std::make_unique<FunctionFitter>(cache.phi, std::move(fits), cache.pool);
      cache.inner.push_back(std::move(fold));
    }
  };

  auto calibrate = [&](int k) -> const Cache::Calibration& {
    auto it = cache.calibrations.find(k);
    if (it != cache.calibrations.end()) return it->second;
    if (!cache.inner_built) build_inner();
    ++stats_.calibrations;
    const std::vector<Variant> variants = Candidates(options_.method, options_.config, k);
    std::vector<double> score(variants.size(), 0);
    std::vector<int> count(variants.size(), 0);
    std::vector<std::vector<double>> errors(variants.size());
    std::vector<LatencyPrediction> pred;
    std::vector<double> meas;
    for (const Cache::InnerFold& fold : cache.inner) {
      for (int t : fold.targets) {
        const Cache::Reference& r = *cache.ordered[t];
        const int n = static_cast<int>(r.connected.size());
        if (n <= k) continue;
        for (int seed = 0; seed < options_.calibration_seeds; ++seed) {
          const std::vector<int> drawn =
              DrawIndices(n, k + options_.calibration_rows,
                          DrawSeed(options_.seed, r.fit.device, 1000 * k + seed));
          std::vector<FunctionSample> samples;
          for (int i = 0; i < k; ++i) samples.push_back(r.connected[drawn[i]]);
          for (size_t v = 0; v < variants.size(); ++v) {
            const FunctionDevice f =
                k == 0 ? fold.fitter->FitPrior(
                             options_.method, r.fit.descriptor,
                             ConfigFor(options_.method, variants[v], options_.config))
                       : fold.fitter->Fit(options_.method, samples, r.fit.descriptor,
                                          ConfigFor(options_.method, variants[v], options_.config));
            pred.clear();
            meas.clear();
            for (size_t i = k; i < drawn.size(); ++i) {
              const FunctionSample& s = r.connected[drawn[i]];
              const double y = fold.fitter->PredictMs(f, s.arch);
              pred.push_back({y, y, y});
              meas.push_back(s.latency_ms);
              errors[v].push_back(std::abs(std::log(y / s.latency_ms)));
            }
            const AccuracyMetrics m = ComputeAccuracy(pred, meas);
            score[v] += m.spearman + m.acc10;
            count[v] += 1;
          }
        }
      }
    }
    Cache::Calibration c;
    int best = -1;
    for (size_t v = 0; v < variants.size(); ++v) {
      if (count[v] == 0) continue;
      if (best < 0 || score[v] / count[v] > score[best] / count[best]) best = static_cast<int>(v);
    }
    if (best >= 0) {
      c.valid = true;
      c.variant = variants[best];
      c.half_width = Quantile90(std::move(errors[best]));
    } else {
      c.variant = variants.front();
    }
    return cache.calibrations.emplace(k, c).first->second;
  };

  // Targets and devices without samples.
  const FunctionFitter& fitter = *cache.fitter;
  const int n_refs = static_cast<int>(refs.size());
  bool refs_have_counters = false;
  for (const Cache::Reference* r : cache.ordered) {
    refs_have_counters = refs_have_counters || HasAny(RawCounterVector(r->fit.descriptor));
  }
  const bool weighted =
      options_.method == Method::kMapleWeights || options_.method == Method::kMapleX;
  std::map<std::string, Cache::Target> targets;
  for (const SpaceDeviceData* d : others) {
    std::string key = DeviceKey(*d);
    auto it = cache.targets.find(d->device);
    if (it != cache.targets.end() && it->second.key == key) {
      targets.emplace(d->device, std::move(it->second));
      ++stats_.target_fits_cached;
      continue;
    }
    ++stats_.target_fits;
    std::vector<FunctionSample> samples;
    for (const FunctionSample& s : d->samples) {
      if (space_->IsOutputConnected(s.arch)) samples.push_back(s);
    }
    const int k = static_cast<int>(samples.size());
    int grid = 0;
    for (int g : options_.calibration_ks) {
      if (g <= k) grid = g;
    }
    const Cache::Calibration& cal = calibrate(grid);
    Cache::Target t;
    t.key = std::move(key);
    t.fit = k == 0 ? fitter.FitPrior(options_.method, d->descriptor,
                                     ConfigFor(options_.method, cal.variant, options_.config))
                   : fitter.Fit(options_.method, samples, d->descriptor,
                                ConfigFor(options_.method, cal.variant, options_.config));
    t.fit.device = d->device;
    std::string interval;
    if (cal.valid) {
      t.fit.log_half_width = cal.half_width;
      interval = absl::StrFormat(
          "90%% half width %.3f (log), calibrated at k = %d by leaving out %d reference %s",
          cal.half_width, grid, static_cast<int>(cache.inner.size()), cache.inner_basis);
    } else if (k > 0) {
      // One reference device: no device to calibrate on; the target's own residuals.
      std::vector<double> e;
      for (const FunctionSample& s : samples) {
        e.push_back(std::abs(std::log(fitter.PredictMs(t.fit, s.arch) / s.latency_ms)));
      }
      t.fit.log_half_width = Quantile90(std::move(e));
      interval = absl::StrFormat(
          "90%% half width %.3f (log) from its own residuals: one reference device, nothing "
          "to calibrate on",
          t.fit.log_half_width);
    } else {
      t.fit.log_half_width = cache.ordered.front()->half_width;
      interval = absl::StrFormat(
          "90%% half width %.3f (log) of the one reference's own fit: nothing to calibrate on",
          t.fit.log_half_width);
    }
    FunctionDeviceSummary& s = t.summary;
    s.device = d->device;
    s.hardware = d->hardware;
    s.sample_count = static_cast<int>(d->samples.size());
    s.samples_fitted = k;
    const bool has_spec = HasAny(RawSpecVector(d->descriptor.spec));
    s.descriptor_use.spec = weighted && has_spec;
    s.descriptor_use.counters =
        weighted && refs_have_counters && HasAny(RawCounterVector(d->descriptor));
    s.descriptor_use.measured_latencies = k > 0;
    std::string how;
    if (k == 0) {
      how =
          s.descriptor_use.spec
              ? absl::StrFormat(
                    "no samples: the spec-weighted (bandwidth %.3g) mean of %d references",
                    ConfigFor(options_.method, cal.variant, options_.config).spec_bandwidth, n_refs)
              : absl::StrCat("no samples: the unweighted mean of ", n_refs, " references");
    } else if (options_.method == Method::kBaseline) {
      how = absl::StrFormat(
          "baseline from %d samples: log-linear transfer from %s (alpha %.3f, beta %.3f)", k,
          cache.ordered[t.fit.transfer_reference]->fit.device, t.fit.alpha, t.fit.beta);
    } else {
      const bool ve = (options_.method == Method::kMapleVirtualExamples ||
                       (options_.method == Method::kMapleX && cal.variant.virtual_examples));
      how = absl::StrCat(MethodName(options_.method), " from ", k, " samples: prior of ",
                         std::min(n_refs, options_.config.max_prior_references > 0
                                              ? options_.config.max_prior_references
                                              : n_refs),
                         " of ", n_refs, " references",
                         weighted ? (s.descriptor_use.spec ? ", spec x agreement weighted"
                                                           : ", agreement weighted")
                                  : "",
                         ve ? ", virtual examples" : "");
      if (t.fit.mix > 0) {
        absl::StrAppend(&how, absl::StrFormat(", %.2f blended with the baseline from %s", t.fit.mix,
                                              cache.ordered[t.fit.transfer_reference]->fit.device));
      }
    }
    s.fit = absl::StrCat(how, "; ", interval);
    if (k < s.sample_count) {
      absl::StrAppend(&s.fit, "; ", s.sample_count - k, " output-disconnected samples not fitted");
    }
    targets.emplace(d->device, std::move(t));
  }
  cache.targets = std::move(targets);

  TrainedFunctionModel out;
  out.params.space = space_name;
  for (const Cache::Reference* r : cache.ordered) {
    FunctionDevice d;
    d.device = r->fit.device;
    d.weights = r->fit.weights;
    d.log_half_width = r->half_width;
    out.params.devices.push_back(std::move(d));
    FunctionDeviceSummary s;
    s.device = r->fit.device;
    s.hardware = r->fit.hardware;
    s.reference = true;
    s.samples_fitted = static_cast<int>(r->connected.size());
    s.descriptor_use.measured_latencies = true;
    s.fit = absl::StrFormat(
        "reference: ridge fit on %d samples; 90%% half width %.3f (log) on a fifth held out",
        s.samples_fitted, r->half_width);
    out.summaries.push_back(std::move(s));
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    out.summaries[i].sample_count = static_cast<int>(refs[i]->samples.size());
    if (out.summaries[i].samples_fitted < out.summaries[i].sample_count) {
      absl::StrAppend(&out.summaries[i].fit, "; ",
                      out.summaries[i].sample_count - out.summaries[i].samples_fitted,
                      " output-disconnected samples not fitted");
    }
  }
  for (const SpaceDeviceData* d : others) {
    const Cache::Target& t = cache.targets.at(d->device);
    out.params.devices.push_back(t.fit);
    out.summaries.push_back(t.summary);
  }
  return out;
}

absl::StatusOr<TrainedFunctionModel> TrainFunctionModel(const ArchitectureSpace& space,
                                                        const std::vector<SpaceDeviceData>& devices,
                                                        const FunctionTrainOptions& options) {
  FunctionModelTrainer trainer(space, options);
  return trainer.Train(devices);
}

}  // namespace maplex::core

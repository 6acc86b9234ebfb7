// Prometheus metrics without a dependency: counters, gauges and histograms with labels,
// kept in a registry and written in the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). prometheus-cpp is not
// packaged for Debian 12; this is the small part of it maplex needs.
//
//   MetricsRegistry registry;
//   CounterFamily& stored = registry.AddCounter("maplex_measurements_stored_total",
//                                               "Measurements stored", {});
//   stored.WithLabels({}).Increment(n);                      // atomic, lock-free
//   HistogramFamily& rpc = registry.AddHistogram("maplex_rpc_duration_seconds", "...",
//                                                {"method", "code"}, {0.001, 0.01, 0.1, 1});
//   rpc.WithLabels({"/maplex.v1.Predictor/Predict", "OK"}).Observe(0.004);
//   std::string page = registry.Expose();                    // for GET /metrics
//
// Thread-safe. A child (one label combination) is created on first use and lives as long
// as the registry, so callers may keep the reference; updating it is a few atomic
// operations. WithLabels takes a reader lock to find an existing child.
#ifndef MAPLEX_PLATFORM_METRICS_METRICS_H_
#define MAPLEX_PLATFORM_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace maplex::metrics {

using LabelValues = std::vector<std::string>;

// A count that only goes up.
class Counter {
 public:
  void Increment(uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that is set.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into buckets by upper bound (le), with their sum and count.
class Histogram {
 public:
  // `upper_bounds` ascending; +Inf is implicit.
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return upper_bounds_; }

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound, then +Inf; not cumulative
  std::atomic<double> sum_{0};
};

// One metric name with its children, one per combination of label values.
template <typename Metric>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  // The child with these label values (as many as label names), created on first use.
  Metric& WithLabels(const LabelValues& values) {
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      auto it = children_.find(values);
      if (it != children_.end()) return *it->second;
    }
    std::lock_guard<std::shared_mutex> lock(mu_);
    std::unique_ptr<Metric>& child = children_[values];
    if (child == nullptr) child = make_();
    return *child;
  }

  // Drops every child not in `keep` (e.g. devices gone from the newest model). Callers
  // holding a dropped child's reference must not use it afterwards.
  void RetainOnly(const std::vector<LabelValues>& keep) {
    std::lock_guard<std::shared_mutex> lock(mu_);
    for (auto it = children_.begin(); it != children_.end();) {
      bool kept = false;
      for (const LabelValues& k : keep) kept = kept || k == it->first;
      it = kept ? std::next(it) : children_.erase(it);
    }
  }

  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls `f(label values, child)` for every child, in label order.
  template <typename F>
  void ForEach(F f) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    for (const auto& [values, child] : children_) f(values, *child);
  }

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Metric>()> make_;
  mutable std::shared_mutex mu_;
  std::map<LabelValues, std::unique_ptr<Metric>> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class MetricsRegistry {
 public:
  // Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total).
  // Adding a name twice is a programming error (checked: it aborts).
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names);
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names);
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names,
                                std::vector<double> upper_bounds);
  // An unlabelled gauge whose value `read` computes at each exposition (e.g. an age);
  // no sample is written while `read` returns nullopt.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<std::optional<double>()> read);

  // Every metric in the text exposition format 0.0.4, in the order they were added.
  std::string Expose() const;

 private:
  struct Entry {
    std::string name;
    std::string help;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
    std::function<std::optional<double>()> callback;
  };
  Entry& Add(const std::string& name, const std::string& help);

  mutable std::shared_mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

// The Content-Type of Expose()'s output.
inline constexpr char kExpositionContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// A sample value as the format writes it: shortest round-trip decimal, "+Inf", "-Inf", "NaN".
std::string FormatSampleValue(double v);

}  // namespace maplex::metrics

#endif  // MAPLEX_PLATFORM_METRICS_METRICS_H_

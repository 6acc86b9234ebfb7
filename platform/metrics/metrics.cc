#include "platform/metrics/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace maplex::metrics {
namespace {

bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// HELP text escapes backslash and newline; label values also escape the double quote.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with `extra` (e.g. le="0.1") last; empty when there are no labels.
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", names[i], "=\"", Escape(values[i], true), "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", extra);
  return out.empty() ? out : absl::StrCat("{", out, "}");
}

void AddDouble(std::atomic<double>& target, double v) {
  double old = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
  }
}

}  // namespace

std::string FormatSampleValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < upper_bounds_.size() && v > upper_bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  AddDouble(sum_, v);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // Buckets, not count_, are the truth of one consistent read: +Inf equals the count.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

MetricsRegistry::Entry& MetricsRegistry::Add(const std::string& name, const std::string& help) {
  std::lock_guard<std::shared_mutex> lock(mu_);
  bool taken = false;
  for (const auto& e : entries_) taken = taken || e->name == name;
  if (taken || !IsValidName(name)) {
    std::fprintf(stderr, "metrics: name \"%s\" is invalid or added twice\n", name.c_str());
    std::abort();
  }
  auto& e = entries_.emplace_back(std::make_unique<Entry>());
  e->name = name;
  e->help = help;
  return *e;
}

CounterFamily& MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                           std::vector<std::string> label_names) {
  Entry& e = Add(name, help);
  e.counter = std::make_unique<CounterFamily>(std::move(label_names),
                                              [] { return std::make_unique<Counter>(); });
  return *e.counter;
}

GaugeFamily& MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names) {
  Entry& e = Add(name, help);
  e.gauge = std::make_unique<GaugeFamily>(std::move(label_names),
                                          [] { return std::make_unique<Gauge>(); });
  return *e.gauge;
}

HistogramFamily& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> upper_bounds) {
  Entry& e = Add(name, help);
  e.histogram = std::make_unique<HistogramFamily>(
      std::move(label_names), [upper_bounds] { return std::make_unique<Histogram>(upper_bounds); });
  return *e.histogram;
}

void MetricsRegistry::AddCallbackGauge(const std::string& name, const std::string& help,
                                       std::function<std::optional<double>()> read) {
  Add(name, help).callback = std::move(read);
}

std::string MetricsRegistry::Expose() const {
  std::lock_guard<std::shared_mutex> lock(mu_);
  std::string out;
  for (const auto& e : entries_) {
    const char* type = e->counter ? "counter" : e->histogram ? "histogram" : "gauge";
    absl::StrAppend(&out, "# HELP ", e->name, " ", Escape(e->help, false), "\n# TYPE ", e->name,
                    " ", type, "\n");
    if (e->counter) {
      e->counter->ForEach([&](const LabelValues& values, const Counter& c) {
        absl::StrAppend(&out, e->name, LabelSet(e->counter->label_names(), values), " ", c.Value(),
                        "\n");
      });
    } else if (e->gauge) {
      e->gauge->ForEach([&](const LabelValues& values, const Gauge& g) {
        absl::StrAppend(&out, e->name, LabelSet(e->gauge->label_names(), values), " ",
                        FormatSampleValue(g.Value()), "\n");
      });
    } else if (e->histogram) {
      const std::vector<std::string>& names = e->histogram->label_names();
      e->histogram->ForEach([&](const LabelValues& values, const Histogram& h) {
        Histogram::Snapshot s = h.Read();
        for (size_t i = 0; i < s.cumulative.size(); ++i) {
          std::string le =
              i < h.upper_bounds().size() ? FormatSampleValue(h.upper_bounds()[i]) : "+Inf";
          absl::StrAppend(&out, e->name, "_bucket",
                          LabelSet(names, values, absl::StrCat("le=\"", le, "\"")), " ",
                          s.cumulative[i], "\n");
        }
        absl::StrAppend(&out, e->name, "_sum", LabelSet(names, values), " ",
                        FormatSampleValue(s.sum), "\n", e->name, "_count", LabelSet(names, values),
                        " ", s.count, "\n");
      });
    } else if (std::optional<double> v = e->callback()) {
      absl::StrAppend(&out, e->name, " ", FormatSampleValue(*v), "\n");
    }
  }
  return out;
}

}  // namespace maplex::metrics

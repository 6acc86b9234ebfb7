#include "core/hardware/descriptor_features.h"

#include <cmath>
#include <limits>

namespace maplex::core {
namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
constexpr DeviceCategory kCategories[] = {DeviceCategory::kDesktopGpu, DeviceCategory::kDesktopCpu,
                                          DeviceCategory::kMobile,     DeviceCategory::kEdgeCpu,
                                          DeviceCategory::kAsic,       DeviceCategory::kFpga};

double LogOrMissing(const std::optional<double>& v) {
  return v && *v > 0 ? std::log(*v) : kMissing;
}

void FitMoments(const std::vector<std::vector<double>>& rows, std::vector<double>* mean,
                std::vector<double>* sd) {
  const size_t n = rows.empty() ? 0 : rows[0].size();
  mean->assign(n, 0);
  sd->assign(n, 1);
  for (size_t j = 0; j < n; ++j) {
    double s = 0, ss = 0;
    int count = 0;
    for (const auto& row : rows) {
      if (std::isnan(row[j])) continue;
      s += row[j];
      ss += row[j] * row[j];
      ++count;
    }
    if (count == 0) continue;
    (*mean)[j] = s / count;
    const double var = ss / count - (*mean)[j] * (*mean)[j];
    // A field constant over the training devices still separates a target that differs.
    (*sd)[j] = var > 1e-12 ? std::sqrt(var) : 1.0;
  }
}

void Standardise(const std::vector<double>& raw, const std::vector<double>& mean,
                 const std::vector<double>& sd, std::vector<double>* out,
                 std::vector<bool>* known) {
  out->assign(raw.size(), 0);
  known->assign(raw.size(), false);
  for (size_t j = 0; j < raw.size(); ++j) {
    if (std::isnan(raw[j])) continue;
    (*out)[j] = (raw[j] - mean[j]) / sd[j];
    (*known)[j] = true;
  }
}

bool Any(const std::vector<bool>& flags) {
  for (bool f : flags) {
    if (f) return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string>& KnownCounterNames() {
  static const auto* names = new std::vector<std::string>{
      "cpu-cycles",      "instructions",          "cache-references", "cache-misses",
      "L1-dcache-loads", "L1-dcache-load-misses", "LLC-loads",        "LLC-load-misses",
      "LLC-stores",      "LLC-store-misses",      "cpu-migrations"};
  return *names;
}

const std::vector<std::string>& SpecFieldNames() {
  static const auto* names =
      new std::vector<std::string>{"is_desktop_gpu",    "is_desktop_cpu",
                                   "is_mobile",         "is_edge_cpu",
                                   "is_asic",           "is_fpga",
                                   "log_compute_units", "log_threads",
                                   "base_clock_ghz",    "boost_clock_ghz",
                                   "log_l2_mib",        "log_llc_mib",
                                   "log_memory_gib",    "log_memory_bandwidth_gbs",
                                   "log_tdp_w",         "log_batch_size",
                                   "precision_bits"};
  return *names;
}

std::vector<double> RawSpecVector(const HardwareSpec& spec) {
  std::vector<double> v;
  for (DeviceCategory c : kCategories) {
    v.push_back(spec.category == DeviceCategory::kUnknown ? kMissing
                                                          : (spec.category == c ? 1.0 : 0.0));
  }
  v.push_back(LogOrMissing(spec.compute_units));
  v.push_back(LogOrMissing(spec.threads));
  v.push_back(spec.base_clock_ghz.value_or(kMissing));
  v.push_back(spec.boost_clock_ghz.value_or(kMissing));
  v.push_back(LogOrMissing(spec.l2_mib));
  v.push_back(LogOrMissing(spec.llc_mib));
  v.push_back(LogOrMissing(spec.memory_gib));
  v.push_back(LogOrMissing(spec.memory_bandwidth_gbs));
  v.push_back(LogOrMissing(spec.tdp_w));
  v.push_back(std::log(static_cast<double>(spec.batch_size > 0 ? spec.batch_size : 1)));
  double bits = kMissing;
  if (spec.precision == "fp32") bits = 32;
  if (spec.precision == "fp16" || spec.precision == "bf16") bits = 16;
  if (spec.precision == "int8") bits = 8;
  v.push_back(bits);
  return v;
}

std::vector<double> RawCounterVector(const HardwareDescriptor& descriptor) {
  const std::vector<std::string>& names = KnownCounterNames();
  std::vector<double> raw(names.size(), kMissing);
  double instructions = 0;
  for (const CounterReading& c : descriptor.counters) {
    if (c.available && c.name == "instructions") instructions = c.value;
  }
  for (const CounterReading& c : descriptor.counters) {
    if (!c.available || c.value < 0) continue;
    for (size_t j = 0; j < names.size(); ++j) {
      if (names[j] != c.name) continue;
      if (c.name == "instructions") {
        if (descriptor.reference_workload_seconds > 0 && c.value > 0) {
          raw[j] = std::log(c.value / descriptor.reference_workload_seconds);
        }
      } else if (instructions > 0) {
        // log1p keeps a zero count (no migrations) finite; counts per 1000 instructions.
        raw[j] = std::log1p(1000.0 * c.value / instructions);
      }
    }
  }
  return raw;
}

bool EncodedDescriptor::has_spec() const { return Any(spec_known); }
bool EncodedDescriptor::has_counters() const { return Any(counter_known); }

DescriptorEncoder DescriptorEncoder::Fit(const std::vector<HardwareDescriptor>& training) {
  std::vector<std::vector<double>> specs, counters;
  for (const HardwareDescriptor& d : training) {
    specs.push_back(RawSpecVector(d.spec));
    counters.push_back(RawCounterVector(d));
  }
  DescriptorEncoder enc;
  FitMoments(specs, &enc.spec_mean_, &enc.spec_sd_);
  FitMoments(counters, &enc.counter_mean_, &enc.counter_sd_);
  if (enc.spec_mean_.empty()) {
    enc.spec_mean_.assign(SpecFieldNames().size(), 0);
    enc.spec_sd_.assign(SpecFieldNames().size(), 1);
  }
  if (enc.counter_mean_.empty()) {
    enc.counter_mean_.assign(KnownCounterNames().size(), 0);
    enc.counter_sd_.assign(KnownCounterNames().size(), 1);
  }
  return enc;
}

EncodedDescriptor DescriptorEncoder::Encode(const HardwareDescriptor& descriptor) const {
  EncodedDescriptor e;
  Standardise(RawSpecVector(descriptor.spec), spec_mean_, spec_sd_, &e.spec, &e.spec_known);
  Standardise(RawCounterVector(descriptor), counter_mean_, counter_sd_, &e.counters,
              &e.counter_known);
  return e;
}

double DescriptorEncoder::Similarity(const EncodedDescriptor& a, const EncodedDescriptor& b,
                                     double bandwidth) const {
  double d2 = 0;
  int n = 0;
  auto add = [&](const std::vector<double>& x, const std::vector<bool>& xk,
                 const std::vector<double>& y, const std::vector<bool>& yk) {
    for (size_t j = 0; j < x.size() && j < y.size(); ++j) {
      if (!xk[j] || !yk[j]) continue;
      d2 += (x[j] - y[j]) * (x[j] - y[j]);
      ++n;
    }
  };
  add(a.spec, a.spec_known, b.spec, b.spec_known);
  add(a.counters, a.counter_known, b.counters, b.counter_known);
  if (n == 0) return 0.5;
  return std::exp(-d2 / (2 * bandwidth * bandwidth * n));
}

}  // namespace maplex::core

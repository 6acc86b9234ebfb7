#include "agent/counters/counter_profile.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

const core::CounterReading* Find(const CounterReport& report, const std::string& name) {
  for (const core::CounterReading& reading : report.readings) {
    if (reading.name == name) return &reading;
  }
  return nullptr;
}

// Why an input cannot be used, or empty if it can.
std::string Missing(const core::CounterReading* reading, const std::string& name) {
  if (reading == nullptr) return absl::StrCat(name, " not read");
  if (!reading->available) {
    return absl::StrCat(name, " unavailable (", reading->unavailable_reason, ")");
  }
  return "";
}

core::CounterReading Ratio(const CounterReport& report, const std::string& name,
                           const std::string& numerator, const std::string& denominator,
                           double scale) {
  core::CounterReading out;
  out.name = name;
  const core::CounterReading* num = Find(report, numerator);
  const core::CounterReading* den = Find(report, denominator);
  out.unavailable_reason = Missing(num, numerator);
  if (out.unavailable_reason.empty()) out.unavailable_reason = Missing(den, denominator);
  if (out.unavailable_reason.empty() && den->value <= 0) {
    out.unavailable_reason = absl::StrCat(denominator, " is zero");
  }
  if (out.unavailable_reason.empty()) {
    out.available = true;
    out.value = num->value / den->value * scale;
  }
  return out;
}

}  // namespace

std::vector<core::CounterReading> NormalizeCounters(const CounterReport& report) {
  std::vector<core::CounterReading> out = {
      Ratio(report, "ipc", "instructions", "cpu-cycles", 1),
      Ratio(report, "cache_miss_ratio", "cache-misses", "cache-references", 1),
      Ratio(report, "l1d_load_miss_ratio", "L1-dcache-load-misses", "L1-dcache-loads", 1),
      Ratio(report, "llc_load_miss_ratio", "LLC-load-misses", "LLC-loads", 1),
      Ratio(report, "llc_store_miss_ratio", "LLC-store-misses", "LLC-stores", 1),
      Ratio(report, "branch_mpki", "branch-misses", "instructions", 1e3),
      // task-clock is in ns: cycles per ns = GHz.
      Ratio(report, "effective_ghz", "cpu-cycles", "task-clock", 1),
      Ratio(report, "page_faults_per_ms", "page-faults", "task-clock", 1e6),
      Ratio(report, "context_switches_per_ms", "context-switches", "task-clock", 1e6),
      Ratio(report, "cpu_migrations_per_ms", "cpu-migrations", "task-clock", 1e6),
  };
  core::CounterReading utilization;
  utilization.name = "cpu_utilization";
  const core::CounterReading* task_clock = Find(report, "task-clock");
  utilization.unavailable_reason = Missing(task_clock, "task-clock");
  if (utilization.unavailable_reason.empty() && report.workload_seconds <= 0) {
    utilization.unavailable_reason = "workload time is zero";
  }
  if (utilization.unavailable_reason.empty()) {
    utilization.available = true;
    utilization.value = task_clock->value / 1e9 / report.workload_seconds;
  }
  out.push_back(utilization);
  return out;
}

core::HardwareDescriptor MakeHardwareDescriptor(const core::HardwareSpec& spec,
                                                const CounterReport& report) {
  core::HardwareDescriptor descriptor;
  descriptor.spec = spec;
  descriptor.counters = report.readings;
  for (core::CounterReading& derived : NormalizeCounters(report)) {
    descriptor.counters.push_back(std::move(derived));
  }
  descriptor.reference_workload_seconds = report.workload_seconds;
  return descriptor;
}

}  // namespace maplex::agent

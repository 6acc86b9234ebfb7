#include "agent/counters/counter_profile.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

using ::testing::HasSubstr;

// Serves fixed counts; names it has no count for come back unavailable, as on a VM.
class FakeCounterSource : public CounterSource {
 public:
  explicit FakeCounterSource(std::map<std::string, double> counts) : counts_(counts) {}
  absl::StatusOr<CounterReport> CountAround(const std::vector<std::string>& names,
                                            absl::FunctionRef<void()> workload) override {
    workload();
    CounterReport report;
    report.workload_seconds = 0.5;
    report.method = "fake";
    for (const std::string& name : names) {
      core::CounterReading reading;
      reading.name = name;
      auto it = counts_.find(name);
      if (it == counts_.end()) {
        reading.unavailable_reason = "perf_event_open: ENOENT — fake";
      } else {
        reading.available = true;
        reading.value = it->second;
      }
      report.readings.push_back(reading);
    }
    return report;
  }

 private:
  std::map<std::string, double> counts_;
};

const core::CounterReading& Named(const std::vector<core::CounterReading>& readings,
                                  const std::string& name) {
  for (const core::CounterReading& reading : readings) {
    if (reading.name == name) return reading;
  }
  ADD_FAILURE() << "no reading " << name;
  static const core::CounterReading* none = new core::CounterReading();
  return *none;
}

TEST(NormalizeCountersTest, AllCountersGiveAllRatios) {
  FakeCounterSource source({{"cpu-cycles", 2e9},
                            {"instructions", 3e9},
                            {"cache-references", 1e6},
                            {"cache-misses", 2.5e5},
                            {"L1-dcache-loads", 1e9},
                            {"L1-dcache-load-misses", 5e7},
                            {"LLC-loads", 1e6},
                            {"LLC-load-misses", 1e5},
                            {"LLC-stores", 4e5},
                            {"LLC-store-misses", 2e5},
                            {"branch-misses", 6e6},
                            {"task-clock", 0.4e9},
                            {"page-faults", 800},
                            {"context-switches", 4},
                            {"cpu-migrations", 0}});
  int runs = 0;
  absl::StatusOr<CounterReport> report =
      source.CountAround(MapleEdgeCounterNames(), [&] { ++runs; });
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(runs, 1);
  std::vector<core::CounterReading> rates = NormalizeCounters(*report);
  for (const core::CounterReading& rate : rates) {
    EXPECT_TRUE(rate.available) << rate.name << ": " << rate.unavailable_reason;
  }
  EXPECT_DOUBLE_EQ(Named(rates, "ipc").value, 1.5);
  EXPECT_DOUBLE_EQ(Named(rates, "cache_miss_ratio").value, 0.25);
  EXPECT_DOUBLE_EQ(Named(rates, "l1d_load_miss_ratio").value, 0.05);
  EXPECT_DOUBLE_EQ(Named(rates, "llc_load_miss_ratio").value, 0.1);
  EXPECT_DOUBLE_EQ(Named(rates, "llc_store_miss_ratio").value, 0.5);
  EXPECT_DOUBLE_EQ(Named(rates, "branch_mpki").value, 2.0);
  EXPECT_DOUBLE_EQ(Named(rates, "effective_ghz").value, 5.0);
  EXPECT_DOUBLE_EQ(Named(rates, "page_faults_per_ms").value, 2.0);
  EXPECT_DOUBLE_EQ(Named(rates, "context_switches_per_ms").value, 0.01);
  EXPECT_DOUBLE_EQ(Named(rates, "cpu_migrations_per_ms").value, 0.0);
  EXPECT_DOUBLE_EQ(Named(rates, "cpu_utilization").value, 0.8);
}

TEST(NormalizeCountersTest, HiddenPmuLeavesOnlySoftwareRatesWithReasons) {
  FakeCounterSource vm(
      {{"task-clock", 1e9}, {"page-faults", 10}, {"context-switches", 2}, {"cpu-migrations", 1}});
  CounterReport report = *vm.CountAround(MapleEdgeCounterNames(), [] {});
  std::vector<core::CounterReading> rates = NormalizeCounters(report);
  const core::CounterReading& ipc = Named(rates, "ipc");
  EXPECT_FALSE(ipc.available);
  EXPECT_EQ(ipc.value, 0);
  EXPECT_THAT(ipc.unavailable_reason, HasSubstr("instructions unavailable"));
  EXPECT_THAT(ipc.unavailable_reason, HasSubstr("ENOENT"));
  EXPECT_FALSE(Named(rates, "effective_ghz").available);
  EXPECT_TRUE(Named(rates, "page_faults_per_ms").available);
  EXPECT_DOUBLE_EQ(Named(rates, "page_faults_per_ms").value, 0.01);
  EXPECT_DOUBLE_EQ(Named(rates, "cpu_utilization").value, 2.0);
}

TEST(NormalizeCountersTest, ZeroDenominatorIsUnavailableNotInfinite) {
  FakeCounterSource source({{"LLC-loads", 0}, {"LLC-load-misses", 0}});
  CounterReport report = *source.CountAround({"LLC-loads", "LLC-load-misses"}, [] {});
  const std::vector<core::CounterReading> rates = NormalizeCounters(report);
  const core::CounterReading& ratio = Named(rates, "llc_load_miss_ratio");
  EXPECT_FALSE(ratio.available);
  EXPECT_THAT(ratio.unavailable_reason, HasSubstr("LLC-loads is zero"));
  EXPECT_THAT(Named(rates, "ipc").unavailable_reason, HasSubstr("instructions not read"));
}

TEST(MakeHardwareDescriptorTest, KeepsRawThenDerivedAndTheWorkloadTime) {
  FakeCounterSource source({{"instructions", 10}, {"cpu-cycles", 5}});
  CounterReport report = *source.CountAround({"cpu-cycles", "instructions"}, [] {});
  core::HardwareSpec spec;
  spec.isa = "x86_64";
  core::HardwareDescriptor descriptor = MakeHardwareDescriptor(spec, report);
  EXPECT_EQ(descriptor.spec.isa, "x86_64");
  EXPECT_DOUBLE_EQ(descriptor.reference_workload_seconds, 0.5);
  ASSERT_GT(descriptor.counters.size(), 2u);
  EXPECT_EQ(descriptor.counters[0].name, "cpu-cycles");
  EXPECT_EQ(descriptor.counters[1].name, "instructions");
  EXPECT_DOUBLE_EQ(Named(descriptor.counters, "ipc").value, 2.0);
}

}  // namespace
}  // namespace maplex::agent

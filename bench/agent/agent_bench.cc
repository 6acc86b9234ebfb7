// Agent benchmarks: eigen vs onednn executing the whole NB201 and FBNet networks, and how long
// describing a device takes (OS probe, micro-benchmarks, counter read).
//
//   build/bin/maplex_agent_bench --benchmark_min_time=2
#include <array>
#include <memory>
#include <vector>

#include "agent/common/clock.h"
#include "agent/counters/perf_counter_source.h"
#include "agent/probe/device_probe.h"
#include "agent/probe/micro_benchmark.h"
#include "agent/runtime/eigen_runtime.h"
#include "agent/runtime/onednn_runtime.h"
#include "benchmark/benchmark.h"
#include "core/arch/fbnet_space.h"

namespace maplex::agent {
namespace {

constexpr std::array<int, 6> kAllConv3x3 = {3, 3, 3, 3, 3, 3};
constexpr std::array<int, 6> kMixed = {3, 0, 2, 1, 4, 3};

// args: cell (0 = all conv3x3, 1 = mixed), batch, threads
template <typename RuntimeT>
void BM_Nb201Network(benchmark::State& state) {
  const Nb201Cell cell =
      *core::Nb201Space::CellFromOpCodes(state.range(0) == 0 ? kAllConv3x3 : kMixed);
  RuntimeT runtime;
  if (absl::Status s = runtime.Prepare(cell, state.range(1), state.range(2)); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  for (auto _ : state) {
    if (!runtime.Run().ok()) state.SkipWithError("run failed");
  }
  state.SetLabel(runtime.name());
  state.SetItemsProcessed(state.iterations() * state.range(1));  // images
}

void NetworkArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"cell", "batch", "threads"});
  b->Args({0, 1, 1})->Args({0, 1, 2})->Args({0, 16, 1})->Args({0, 16, 2})->Args({1, 1, 1});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_TEMPLATE(BM_Nb201Network, EigenRuntime)->Apply(NetworkArgs);
BENCHMARK_TEMPLATE(BM_Nb201Network, OneDnnRuntime)->Apply(NetworkArgs);

// args: network (0 = all k5_e6, the largest; 1 = all k3_e1_g2; 2 = a sampled one), batch,
// threads
template <typename RuntimeT>
void BM_FbnetNetwork(benchmark::State& state) {
  const core::FbnetSpace& space = core::FbnetSpace::Get();
  const core::Architecture arch = state.range(0) == 2
                                      ? space.Sample(1, 13)[0]
                                      : *space.FromChoices(std::vector<int>(
                                            core::kFbnetLayerCount, state.range(0) == 0 ? 7 : 1));
  RuntimeT runtime;
  if (absl::Status s = runtime.Prepare(arch, state.range(1), state.range(2)); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  for (auto _ : state) {
    if (!runtime.Run().ok()) state.SkipWithError("run failed");
  }
  state.SetLabel(runtime.name());
  state.SetItemsProcessed(state.iterations() * state.range(1));  // images
}

void FbnetArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"net", "batch", "threads"});
  b->Args({0, 1, 1})->Args({0, 1, 2})->Args({1, 1, 1})->Args({2, 1, 1})->Args({2, 16, 2});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_TEMPLATE(BM_FbnetNetwork, EigenRuntime)->Apply(FbnetArgs);
BENCHMARK_TEMPLATE(BM_FbnetNetwork, OneDnnRuntime)->Apply(FbnetArgs);

void BM_ProbeDevice(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(ProbeDevice(RealFileSystem()));
  }
}
BENCHMARK(BM_ProbeDevice)->Unit(benchmark::kMicrosecond);

void BM_MicroBenchmarks(benchmark::State& state) {
  for (auto _ : state) {
    absl::StatusOr<MicroBenchmarkFingerprint> result =
        RunMicroBenchmarks(MicroBenchmarkOptions(), RealClock());
    if (!result.ok()) {
      state.SkipWithError("micro-benchmarks failed");
      break;
    }
    state.counters["bandwidth_GBs"] = result->memory_bandwidth_gbs;
    state.counters["gemm_GFLOPs"] = result->gemm_gflops;
    state.counters["knee_KiB"] = result->cache_knee_bytes / 1024.0;
  }
}
BENCHMARK(BM_MicroBenchmarks)->Unit(benchmark::kMillisecond)->Iterations(3);

// The MAPLE-Edge counter set read around one single-threaded all-conv3x3 inference.
void BM_CountersAroundReference(benchmark::State& state) {
  EigenRuntime runtime;
  if (!runtime.Prepare(*core::Nb201Space::CellFromOpCodes(kAllConv3x3), 1, 1).ok()) return;
  PerfCounterSource source(RealClock());
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        source.CountAround(MapleEdgeCounterNames(), [&] { (void)runtime.Run(); }));
  }
}
BENCHMARK(BM_CountersAroundReference)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace maplex::agent

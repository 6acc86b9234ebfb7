// Speed and memory of the served latency model (docs/BENCHMARKS.md, "Model"):
//   build/bin/model_benchmark --benchmark_filter=. (run from the source tree for data/)
// Training on all bundled data, Predict throughput on one core, the memory a served model
// holds, adapting one new device from k samples, and the scaling curve (1x, 4x, 16x data).
// bench/run_all.py runs it (with --benchmark_format=json) to fill docs/BENCHMARKS.md.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "client/data_files.h"
#include "core/model/latency_model.h"

namespace {

using maplex::core::DeviceData;

const std::vector<DeviceData>& Bundled() {
  static const auto* devices = [] {
    auto d = maplex::client::LoadLatencyData("data/nb201_latency.csv.gz", "data/nb201_devices.csv");
    if (!d.ok()) {
      std::fprintf(stderr, "model_benchmark: %s (run from the source tree)\n",
                   std::string(d.status().message()).c_str());
      std::exit(1);
    }
    return new std::vector<DeviceData>(*std::move(d));
  }();
  return *devices;
}

// The bundled devices with the phones cut to 10 samples each: they become adapted targets.
std::vector<DeviceData> WithSparseTargets() {
  std::vector<DeviceData> devices = Bundled();
  for (DeviceData& d : devices) {
    if (d.descriptor.spec.category != maplex::core::DeviceCategory::kMobile) continue;
    std::vector<maplex::core::LatencySample> keep;
    for (size_t i = 0; i < d.samples.size() && keep.size() < 10; i += 1531)
      keep.push_back(d.samples[i]);
    d.samples = keep;
  }
  return devices;
}

long ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

void Train(benchmark::State& state, const std::vector<DeviceData>& devices) {
  maplex::core::TrainOptions options;
  options.method = static_cast<maplex::core::Method>(state.range(0));
  for (auto _ : state) {
    auto model = maplex::core::TrainLatencyModel(devices, options);
    if (!model.ok()) state.SkipWithError(std::string(model.status().message()).c_str());
    benchmark::DoNotOptimize(model);
  }
  state.SetLabel(maplex::core::MethodName(options.method));
}

void BM_TrainAllBundled(benchmark::State& state) { Train(state, Bundled()); }
BENCHMARK(BM_TrainAllBundled)
    ->Arg(static_cast<int>(maplex::core::Method::kBaseline))
    ->Arg(static_cast<int>(maplex::core::Method::kMapleX))
    ->Unit(benchmark::kMillisecond);

void BM_TrainWithSparseTargets(benchmark::State& state) {
  static const auto* devices = new std::vector<DeviceData>(WithSparseTargets());
  Train(state, *devices);
}
BENCHMARK(BM_TrainWithSparseTargets)
    ->Arg(static_cast<int>(maplex::core::Method::kMapleX))
    ->Unit(benchmark::kMillisecond);

void BM_Predict(benchmark::State& state) {
  static const auto* model = [] {
    auto m = maplex::core::TrainLatencyModel(WithSparseTargets(), {});
    return m.ok() ? m->release() : nullptr;
  }();
  if (model == nullptr) return state.SkipWithError("training failed");
  std::vector<int32_t> archs(state.range(0));
  for (size_t i = 0; i < archs.size(); ++i) archs[i] = static_cast<int32_t>((i * 7919) % 15625);
  std::vector<maplex::core::LatencyPrediction> out(archs.size());
  for (auto _ : state) {
    absl::Status s = model->Predict("pixel3", archs, absl::MakeSpan(out));
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(archs.size()));
}
BENCHMARK(BM_Predict)->Arg(1000)->Arg(15625);

// Resident memory a served MAPLE-X model adds (trained on all bundled data, 19 devices).
void BM_ServedModelMemory(benchmark::State& state) {
  Bundled();
  for (auto _ : state) {
    const long before = ResidentBytes();
    auto model = maplex::core::TrainLatencyModel(Bundled(), {});
    const long after = ResidentBytes();
    state.counters["model_MB"] = static_cast<double>(after - before) / (1 << 20);
    state.counters["snapshot_MB"] =
        static_cast<double>((*model)->ToProto().ByteSizeLong()) / (1 << 20);
  }
}
BENCHMARK(BM_ServedModelMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

// Heap bytes in use (glibc): unlike the resident set, it drops when memory is freed, so it
// can be compared before and after within one process.
double HeapMB() {
  struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd) / (1 << 20);
}

// Adapting one new device from k samples: all bundled devices as references plus one more
// device (pixel3's column scaled by 1.37 with 5 % lognormal noise) that has only k samples.
// The model is refitted whole, so this is the time from "k samples stored" to a model.
void BM_AdaptOneDevice(benchmark::State& state) {
  std::vector<DeviceData> devices = Bundled();
  DeviceData fresh = devices.back();
  fresh.device = "bench_new_device";
  fresh.hardware = "bench synthetic";
  std::mt19937 rng(7);
  std::lognormal_distribution<double> noise(0.0, 0.05);
  for (auto& s : fresh.samples) s.latency_ms *= 1.37 * noise(rng);
  std::shuffle(fresh.samples.begin(), fresh.samples.end(), rng);
  fresh.samples.resize(static_cast<size_t>(state.range(0)));
  std::sort(fresh.samples.begin(), fresh.samples.end(),
            [](const auto& a, const auto& b) { return a.arch_index < b.arch_index; });
  devices.push_back(fresh);
  for (auto _ : state) {
    auto model = maplex::core::TrainLatencyModel(devices, {});
    if (!model.ok()) state.SkipWithError(std::string(model.status().message()).c_str());
    benchmark::DoNotOptimize(model);
  }
  state.counters["k"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_AdaptOneDevice)->Arg(10)->Unit(benchmark::kMillisecond);

// The bundled data times `factor`: every device is kept and factor - 1 synthetic copies are
// added, each with the original's column scaled by one lognormal per-device factor
// (sigma 0.3) and lognormal per-cell noise (sigma 0.05). Deterministic (seeded).
std::vector<DeviceData> Scaled(int factor) {
  std::vector<DeviceData> out = Bundled();
  std::mt19937 rng(2026);
  std::lognormal_distribution<double> device_scale(0.0, 0.3), cell_noise(0.0, 0.05);
  for (int copy = 1; copy < factor; ++copy) {
    for (const DeviceData& original : Bundled()) {
      DeviceData d = original;
      d.device = original.device + "~" + std::to_string(copy);
      d.hardware = original.hardware + " ~" + std::to_string(copy);
      const double scale = device_scale(rng);
      for (auto& s : d.samples) s.latency_ms *= scale * cell_noise(rng);
      out.push_back(std::move(d));
    }
  }
  return out;
}

// Scaling curve: retrain time and the heap a served model holds at 1x, 4x, 16x the data.
void BM_TrainScaled(benchmark::State& state) {
  const std::vector<DeviceData> devices = Scaled(static_cast<int>(state.range(0)));
  double model_mb = 0, snapshot_mb = 0;
  for (auto _ : state) {
    const double before = HeapMB();
    auto model = maplex::core::TrainLatencyModel(devices, {});
    if (!model.ok()) return state.SkipWithError(std::string(model.status().message()).c_str());
    model_mb = HeapMB() - before;
    state.PauseTiming();
    snapshot_mb = static_cast<double>((*model)->ToProto().ByteSizeLong()) / (1 << 20);
    model->reset();
    state.ResumeTiming();
  }
  state.counters["devices"] = static_cast<double>(devices.size());
  state.counters["model_MB"] = model_mb;
  state.counters["snapshot_MB"] = snapshot_mb;
}
BENCHMARK(BM_TrainScaled)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

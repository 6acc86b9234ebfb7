// Speed and memory of the served latency model (docs/BENCHMARKS.md, "Model"):
//   build/bin/model_benchmark --benchmark_filter=. (run from the source tree for data/)
// Training on all bundled data, Predict throughput on one core, and the memory a served
// model holds.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "client/data_files.h"
#include "benchmark/benchmark.h"
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

}  // namespace

BENCHMARK_MAIN();

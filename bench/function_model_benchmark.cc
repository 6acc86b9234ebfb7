// Speed of the function model (core/model/function_model.h): in-process Predict of sampled
// architectures on one core, FBNet and NB201, pure function (mix 0) and baseline-blended
// devices; and one target fit from k samples against 18 references.
//   build/bin/function_model_benchmark   (items_per_second = architectures per second)
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "core/model/function_model.h"

namespace {

using maplex::core::Architecture;
using maplex::core::ArchitectureSpace;
using maplex::core::FunctionDevice;
using maplex::core::FunctionModel;
using maplex::core::FunctionModelParams;
using maplex::core::LatencyPrediction;

// Coefficient values do not change the work; seeded random ones keep the model honest.
FunctionModel MakeModel(const ArchitectureSpace& space, double mix) {
  const maplex::core::FeatureMap phi(space);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0.01, 1.0);
  FunctionModelParams params;
  params.space = std::string(space.name());
  for (const char* name : {"ref", "target"}) {
    FunctionDevice d;
    d.device = name;
    d.weights.resize(phi.dim());
    for (double& w : d.weights) w = u(rng);
    d.log_half_width = 0.1;
    params.devices.push_back(std::move(d));
  }
  if (mix > 0) {
    params.devices[1].transfer_reference = 0;
    params.devices[1].mix = mix;
    params.devices[1].alpha = 0.1;
    params.devices[1].beta = 1.05;
  }
  return *FunctionModel::Create(std::move(params));
}

void Predict(benchmark::State& state, const ArchitectureSpace& space, double mix) {
  const FunctionModel model = MakeModel(space, mix);
  const std::vector<Architecture> archs = space.Sample(static_cast<int>(state.range(0)), 3);
  std::vector<LatencyPrediction> out(archs.size());
  for (auto _ : state) {
    benchmark::DoNotOptimize(model.Predict("target", archs, absl::MakeSpan(out)));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(archs.size()));
}

void BM_PredictFbnet(benchmark::State& state) {
  Predict(state, maplex::core::FbnetSpace::Get(), 0);
}
BENCHMARK(BM_PredictFbnet)->Arg(1000)->Arg(100000);

void BM_PredictFbnetBlended(benchmark::State& state) {
  Predict(state, maplex::core::FbnetSpace::Get(), 0.5);
}
BENCHMARK(BM_PredictFbnetBlended)->Arg(100000);

void BM_PredictNb201(benchmark::State& state) {
  Predict(state, maplex::core::Nb201Space::Get(), 0);
}
BENCHMARK(BM_PredictNb201)->Arg(15625);

void BM_FitTargetFbnet(benchmark::State& state) {
  const ArchitectureSpace& space = maplex::core::FbnetSpace::Get();
  const maplex::core::FeatureMap phi(space);
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> u(0.01, 1.0);
  std::vector<maplex::core::ReferenceFit> refs(18);
  for (auto& r : refs) {
    r.weights.resize(phi.dim());
    for (double& w : r.weights) w = u(rng);
  }
  const maplex::core::FunctionFitter fitter(phi, refs, space.Sample(256, 7));
  std::vector<maplex::core::FunctionSample> samples;
  for (const Architecture& a : space.Sample(static_cast<int>(state.range(0)), 9)) {
    samples.push_back({a, phi.Dot(a, refs[3].weights.data()) * 1.7});
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        fitter.Fit(maplex::core::Method::kMapleX, samples, {}, maplex::core::FunctionConfig{}));
  }
}
BENCHMARK(BM_FitTargetFbnet)->Arg(3)->Arg(10)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

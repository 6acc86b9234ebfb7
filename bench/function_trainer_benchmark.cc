// Speed and scale of serving the function model (issue #12's acceptance), one core:
//   bundled   cold training on all bundled data of both spaces (FBNet, NB201), every device a
//             reference; and the same with the Titan Xp's configurations as 10-sample targets
//             (adds the interval calibration)
//   fleet N   a synthetic FBNet fleet of N devices: N/10 references with 1,000 samples, the
//             rest targets with 10; cold training time, snapshot bytes per device
//   retrain   after the largest fleet: one new device's 10 samples, the trainer's cached
//             retrain + FunctionModel::Create + its first Predict (the core of ack -> first
//             Predict)
//   served    the served model's held-out rho, +-10 % and 90 % interval coverage in both
//             spaces at k = 3, 10, 20 (leave one hardware out; --noaccuracy skips it)
//   planner   FunctionPlanner with the largest fleet's references: Build, then Next(count 10)
//             for `--requests` devices, p50 / p99
// Every line names the 1-minute load average when it was measured (the machine is shared).
//
//   build/bin/function_trainer_benchmark [--fleet=62,1000] [--reps=3] [--requests=200]
//   [--data=data]
// Synthetic devices: a bundled FBNet device's own ridge fit, each coefficient scaled by
// (1 + 0.15 e), e ~ N(0, 1), and the whole device by a level in [0.5, 2]; samples are its
// latencies of uniformly sampled networks times (1 + 0.02 e). Deterministic.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/data_files.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "core/dataset/latency_table.h"
#include "core/eval/metrics.h"
#include "core/model/function_trainer.h"
#include "core/planning/function_planner.h"

namespace {

using maplex::core::Architecture;
using maplex::core::FbnetSpace;
using maplex::core::FunctionModel;
using maplex::core::FunctionModelTrainer;
using maplex::core::FunctionSample;
using maplex::core::SpaceDeviceData;
using maplex::core::SpaceLatencyTable;
using maplex::core::TrainedFunctionModel;

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string Load() {
  std::ifstream f("/proc/loadavg");
  std::string one;
  f >> one;
  return one;
}

struct Timer {
  double cpu = CpuSeconds(), wall = WallSeconds();
  double Cpu() const { return CpuSeconds() - cpu; }
  double Wall() const { return WallSeconds() - wall; }
};

SpaceLatencyTable LoadTable(const std::string& dir, const std::string& name,
                            const maplex::core::ArchitectureSpace& space) {
  absl::StatusOr<std::string> csv =
      maplex::client::ReadMaybeGzippedFile(dir + "/" + name + "_latency.csv.gz");
  absl::StatusOr<std::string> dev =
      maplex::client::ReadMaybeGzippedFile(dir + "/" + name + "_devices.csv");
  if (!csv.ok() || !dev.ok()) {
    std::fprintf(stderr, "cannot read %s data under %s\n", name.c_str(), dir.c_str());
    std::exit(1);
  }
  absl::StatusOr<SpaceLatencyTable> t = maplex::core::ParseSpaceLatencyTable(*csv, *dev, &space);
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(t);
}

// Every device with all its rows; devices whose id starts with `targets_prefix` get 10.
std::vector<SpaceDeviceData> FromTable(const SpaceLatencyTable& t,
                                       const std::string& targets_prefix) {
  std::vector<SpaceDeviceData> out;
  for (const auto& c : t.devices) {
    SpaceDeviceData d{c.device, c.hardware, c.descriptor, {}};
    const bool target = !targets_prefix.empty() && c.device.rfind(targets_prefix, 0) == 0;
    for (size_t r = 0; r < t.archs.size(); r += target ? t.archs.size() / 10 : 1) {
      if (std::isfinite(c.latency_ms[r])) d.samples.push_back({t.archs[r], c.latency_ms[r]});
      if (target && d.samples.size() == 10) break;
    }
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<TrainedFunctionModel> TrainBoth(const SpaceLatencyTable& fb,
                                               const SpaceLatencyTable& nb,
                                               const std::string& targets_prefix) {
  absl::StatusOr<TrainedFunctionModel> a =
      maplex::core::TrainFunctionModel(*fb.space, FromTable(fb, targets_prefix), {});
  if (!a.ok()) return a;
  return maplex::core::TrainFunctionModel(*nb.space, FromTable(nb, targets_prefix), {});
}

// The synthetic fleet (see the banner).
std::vector<SpaceDeviceData> Fleet(const SpaceLatencyTable& fb, int n) {
  const auto& space = FbnetSpace::Get();
  const maplex::core::FeatureMap phi(space);
  std::vector<std::vector<double>> bases;
  for (const auto& c : fb.devices) {
    std::vector<double> ms(c.latency_ms.begin(), c.latency_ms.end());
    bases.push_back(
        maplex::core::FitReference(phi, c.device, c.hardware, c.descriptor, fb.archs, ms).weights);
  }
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> level(std::log(0.5), std::log(2.0));
  const int references = std::max(2, n / 10);
  std::vector<SpaceDeviceData> out;
  for (int i = 0; i < n; ++i) {
    const auto& base = fb.devices[i % fb.devices.size()];
    std::vector<double> w = bases[i % bases.size()];
    const double s = std::exp(level(rng));
    for (double& v : w) v *= s * (1 + 0.15 * normal(rng));
    SpaceDeviceData d;
    d.device = "synthetic_" + std::to_string(i);
    d.hardware = "synthetic hardware " + std::to_string(i);
    d.descriptor = base.descriptor;
    const int k = i < references ? 1000 : 10;
    for (const Architecture& a : space.Sample(k, 1000 + i)) {
      d.samples.push_back({a, std::max(phi.Dot(a, w.data()), 0.05) * (1 + 0.02 * normal(rng))});
    }
    // Sampling with replacement may repeat a network: keep the first.
    std::sort(d.samples.begin(), d.samples.end(),
              [](const FunctionSample& x, const FunctionSample& y) { return x.arch < y.arch; });
    d.samples.erase(std::unique(d.samples.begin(), d.samples.end(),
                                [](const FunctionSample& x, const FunctionSample& y) {
                                  return x.arch == y.arch;
                                }),
                    d.samples.end());
    if (i < references) {  // top up to the threshold after dropping repeats
      for (const Architecture& a : space.Sample(100, 5000 + i)) {
        if (static_cast<int>(d.samples.size()) >= 1000) break;
        if (std::none_of(d.samples.begin(), d.samples.end(),
                         [&](const FunctionSample& x) { return x.arch == a; })) {
          d.samples.push_back({a, std::max(phi.Dot(a, w.data()), 0.05)});
        }
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

void Die(const absl::Status& s) {
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  std::exit(1);
}

// The served model's accuracy and interval coverage under the evaluation's protocol: every
// fifth row held out from every device, each piece of hardware left out in turn (its
// configurations targets with k samples from the other rows, output-connected), the rest
// references; means over all devices of the held-out connected rows.
void ServedAccuracy(const SpaceLatencyTable& t, int k) {
  const auto& space = *t.space;
  std::vector<std::string> hardware;
  for (const auto& c : t.devices) {
    if (std::find(hardware.begin(), hardware.end(), c.hardware) == hardware.end()) {
      hardware.push_back(c.hardware);
    }
  }
  const int rows = static_cast<int>(t.archs.size());
  std::vector<bool> connected(rows);
  for (int r = 0; r < rows; ++r) connected[r] = space.IsOutputConnected(t.archs[r]);
  double rho = 0, acc10 = 0, coverage = 0;
  int n = 0;
  Timer timer;
  for (const std::string& hw : hardware) {
    std::vector<SpaceDeviceData> fleet;
    std::vector<const SpaceLatencyTable::Column*> targets;
    for (const auto& c : t.devices) {
      SpaceDeviceData d{c.device, c.hardware, c.descriptor, {}};
      if (c.hardware == hw) {
        targets.push_back(&c);
        for (int i = 0; static_cast<int>(d.samples.size()) < k; ++i) {
          const int r = (7 * k + i * 397) % rows;
          if (r % 5 != 4 && connected[r] && std::isfinite(c.latency_ms[r])) {
            d.samples.push_back({t.archs[r], c.latency_ms[r]});
          }
        }
      } else {
        for (int r = 0; r < rows; ++r) {
          if (r % 5 != 4 && std::isfinite(c.latency_ms[r])) {
            d.samples.push_back({t.archs[r], c.latency_ms[r]});
          }
        }
      }
      fleet.push_back(std::move(d));
    }
    absl::StatusOr<TrainedFunctionModel> m = maplex::core::TrainFunctionModel(space, fleet, {});
    if (!m.ok()) Die(m.status());
    absl::StatusOr<FunctionModel> model = FunctionModel::Create(m->params);
    if (!model.ok()) Die(model.status());
    for (const auto* c : targets) {
      std::vector<Architecture> archs;
      std::vector<double> measured;
      for (int r = 4; r < rows; r += 5) {
        if (connected[r] && std::isfinite(c->latency_ms[r])) {
          archs.push_back(t.archs[r]);
          measured.push_back(c->latency_ms[r]);
        }
      }
      std::vector<maplex::core::LatencyPrediction> pred(archs.size());
      if (absl::Status s = model->Predict(c->device, archs, absl::MakeSpan(pred)); !s.ok()) Die(s);
      const maplex::core::AccuracyMetrics a = maplex::core::ComputeAccuracy(pred, measured);
      rho += a.spearman;
      acc10 += a.acc10;
      coverage += a.coverage90;
      ++n;
    }
  }
  std::printf(
      "served %s, k = %d, leave one hardware out (%zu trainings): rho %.3f, +-10 %% %.3f, 90 %% "
      "coverage %.3f (mean of %d devices; %.1f s CPU), load %s\n",
      std::string(space.name()).c_str(), k, hardware.size(), rho / n, acc10 / n, coverage / n, n,
      timer.Cpu(), Load().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> fleets = {62, 1000};
  int requests = 200;
  int reps = 3;
  bool accuracy = true;
  std::string data = "data";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--fleet=", 0) == 0) {
      fleets.clear();
      for (absl::string_view v : absl::StrSplit(arg.substr(8), ',')) {
        int n;
        if (!absl::SimpleAtoi(v, &n) || n < 2) Die(absl::InvalidArgumentError(arg));
        fleets.push_back(n);
      }
    } else if (arg.rfind("--requests=", 0) == 0) {
      if (!absl::SimpleAtoi(arg.substr(11), &requests)) Die(absl::InvalidArgumentError(arg));
    } else if (arg.rfind("--reps=", 0) == 0) {
      if (!absl::SimpleAtoi(arg.substr(7), &reps) || reps < 1) Die(absl::InvalidArgumentError(arg));
    } else if (arg == "--noaccuracy") {
      accuracy = false;
    } else if (arg.rfind("--data=", 0) == 0) {
      data = arg.substr(7);
    } else {
      Die(absl::InvalidArgumentError("unknown argument " + arg));
    }
  }
  const SpaceLatencyTable fb = LoadTable(data, "fbnet", FbnetSpace::Get());
  const SpaceLatencyTable nb = LoadTable(data, "nb201", maplex::core::Nb201Space::Get());

  {
    Timer t;
    absl::StatusOr<TrainedFunctionModel> m = TrainBoth(fb, nb, "");
    if (!m.ok()) Die(m.status());
    std::printf("bundled: both spaces, 38 references: %.2f s CPU (%.2f s wall), load %s\n", t.Cpu(),
                t.Wall(), Load().c_str());
  }
  {
    Timer t;
    absl::StatusOr<TrainedFunctionModel> m = TrainBoth(fb, nb, "titanxp");
    if (!m.ok()) Die(m.status());
    std::printf(
        "bundled: both spaces, titanxp_* as 10-sample targets (32 references, 6 targets): "
        "%.2f s CPU (%.2f s wall), load %s\n",
        t.Cpu(), t.Wall(), Load().c_str());
  }

  if (accuracy) {
    for (const SpaceLatencyTable* t : {&fb, &nb}) {
      for (int k : {3, 10, 20}) ServedAccuracy(*t, k);
    }
  }

  std::vector<double> fleet_cpu;
  FunctionModelTrainer trainer(FbnetSpace::Get(), {});
  std::vector<SpaceDeviceData> last;
  TrainedFunctionModel last_model;
  for (size_t f = 0; f < fleets.size(); ++f) {
    std::vector<SpaceDeviceData> fleet = Fleet(fb, fleets[f]);
    // The least CPU time of `reps` cold trainings (the machine is shared).
    double cpu = 1e300, wall = 1e300;
    FunctionModelTrainer cold(FbnetSpace::Get(), {});
    absl::StatusOr<TrainedFunctionModel> m;
    for (int rep = 0; rep < reps; ++rep) {
      cold = FunctionModelTrainer(FbnetSpace::Get(), {});
      Timer t;
      m = cold.Train(fleet);
      if (!m.ok()) Die(m.status());
      cpu = std::min(cpu, t.Cpu());
      wall = std::min(wall, t.Wall());
    }
    fleet_cpu.push_back(cpu);
    const size_t bytes = maplex::core::SerializeFunctionModel(m->params).size();
    std::printf(
        "fleet %d: %d references, %d targets: %.3f s CPU (%.3f s wall; least of %d), snapshot %zu "
        "B = %.0f B "
        "per device, load %s\n",
        fleets[f], std::max(2, fleets[f] / 10), fleets[f] - std::max(2, fleets[f] / 10), cpu, wall,
        reps, bytes, static_cast<double>(bytes) / fleets[f], Load().c_str());
    if (f + 1 == fleets.size()) {
      trainer = std::move(cold);
      last = std::move(fleet);
      last_model = *std::move(m);
    }
  }
  if (fleets.size() >= 2) {
    std::printf("fleet %d / %d devices (%.1fx): %.1fx the CPU time\n", fleets.back(),
                fleets.front(), static_cast<double>(fleets.back()) / fleets.front(),
                fleet_cpu.back() / fleet_cpu.front());
  }

  // A new device acknowledges k samples: retrain from the caches, build the served model,
  // answer its first Predict. k = 10 finds its calibration cached (the fleet's targets have
  // 10); k = 5 calibrates that sample count first, once.
  for (int k : {10, 5}) {
    std::vector<SpaceDeviceData> fleet = last;
    SpaceDeviceData d = Fleet(fb, static_cast<int>(fleet.size()) + 1).back();
    d.device = "new_board";
    d.samples.resize(k);
    fleet.push_back(std::move(d));
    Timer t;
    absl::StatusOr<TrainedFunctionModel> m = trainer.Train(fleet);
    if (!m.ok()) Die(m.status());
    const double train_wall = t.Wall();
    absl::StatusOr<FunctionModel> model = FunctionModel::Create(m->params);
    if (!model.ok()) Die(model.status());
    std::vector<maplex::core::LatencyPrediction> out(100);
    const std::vector<Architecture> archs = FbnetSpace::Get().Sample(100, 3);
    if (absl::Status s = model->Predict("new_board", archs, absl::MakeSpan(out)); !s.ok()) Die(s);
    const auto& st = trainer.last_stats();
    std::printf(
        "retrain: fleet %zu + 1 new %d-sample device: %.1f ms wall (train %.1f ms: %d reference "
        "and %d target fits, %d cached, %d calibrations) to its first Predict, load %s\n",
        last.size(), k, 1e3 * t.Wall(), 1e3 * train_wall, st.reference_fits, st.target_fits,
        st.reference_fits_cached + st.target_fits_cached, st.calibrations, Load().c_str());
  }

  {
    std::vector<Architecture> measured;
    for (size_t i = 0; i < last_model.summaries.size(); ++i) {
      if (!last_model.summaries[i].reference) continue;
      for (const SpaceDeviceData& d : last) {
        if (d.device != last_model.summaries[i].device) continue;
        for (const FunctionSample& s : d.samples) measured.push_back(s.arch);
      }
    }
    Timer t;
    absl::StatusOr<maplex::core::FunctionPlanner> planner =
        maplex::core::FunctionPlanner::Build(last_model, measured);
    if (!planner.ok()) Die(planner.status());
    const double build_ms = 1e3 * t.Wall();
    std::vector<double> ms;
    for (int r = 0; r < requests; ++r) {
      const SpaceDeviceData& d = last[last.size() - 1 - (r % (last.size() / 2))];
      std::vector<Architecture> done;
      for (const FunctionSample& s : d.samples) done.push_back(s.arch);
      Timer q;
      const maplex::core::FunctionPlan plan = planner->Next(d.device, done, 10, r);
      ms.push_back(1e3 * q.Wall());
      if (plan.archs.size() != 10) Die(absl::InternalError("planner returned too few"));
    }
    std::sort(ms.begin(), ms.end());
    std::printf(
        "planner: %d references, %zu reference architectures: Build %.1f ms; Next(10) over %d "
        "requests p50 %.1f ms, p99 %.1f ms, load %s\n",
        planner->reference_count(), measured.size(), build_ms, requests, ms[ms.size() / 2],
        ms[std::min(ms.size() - 1, static_cast<size_t>(0.99 * ms.size()))], Load().c_str());
  }
  return 0;
}

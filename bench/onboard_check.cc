// Scores MAPLE-X on saved onboarding data: trains on the bundled reference devices, adapts
// the target from its samples and compares with fresh measurements of other cells.
//
//   onboard_check <latency.csv.gz> <devices.csv> <samples.csv> <device_id> <truth.csv>
//                 [maple overrides] [--draws=N] [--primitive_from=N]
// samples.csv: device_id,arch_index,median_ms (the target's and, as the server had them, those
// of other devices on the same machine); truth.csv: arch_index,median_ms,...
// Prints Spearman rho and the share within +-10 % over the output-connected truth cells.
//
// --draws=N replays onboarding N times per way of choosing the samples, to show the spread
// one saved run hides: each draw takes k = 10 of the truth cells as the device's samples
// (its saved samples are ignored; the other devices' are kept) and scores 100 of the
// others. "planner": the server's D-optimal planner, choosing among a random half of the
// truth cells (it is deterministic, so the half is what varies); "random": uniformly at
// random. Prints the median, 10th percentile and minimum of rho and of the +-10 % share
// over the draws. --primitive_from=N is the planner's (MeasurementPlanner::Build); 1000
// gives the planner without the primitive count.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/data_files.h"
#include "core/arch/nb201_space.h"
#include "core/model/trainer.h"
#include "core/planning/measurement_planner.h"

namespace {

using maplex::core::Nb201Space;

std::vector<double> Ranks(const std::vector<double>& v) {
  std::vector<int> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < order.size(); ++i) r[order[i]] = static_cast<double>(i);
  return r;
}

double Pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

// Rows of a CSV file after its header, split on commas.
std::vector<std::vector<std::string>> ReadRows(const std::string& path) {
  absl::StatusOr<std::string> text = maplex::client::ReadMaybeGzippedFile(path);
  std::vector<std::vector<std::string>> rows;
  if (!text.ok()) return rows;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    if (header) {
      header = false;
      continue;
    }
    rows.push_back(absl::StrSplit(line, ','));
  }
  return rows;
}

struct Score {
  double rho = 0;
  double within10 = 0;
};

// Scores `table` against measured latencies of `archs` (all output-connected).
Score ScoreTable(const maplex::core::DeviceTable& table, const std::vector<int>& archs,
                 const std::vector<double>& measured) {
  std::vector<double> predicted;
  int within = 0;
  for (size_t i = 0; i < archs.size(); ++i) {
    predicted.push_back(std::exp(table.log_latency[archs[i]]));
    within += std::abs(predicted.back() / measured[i] - 1) <= 0.1 ? 1 : 0;
  }
  return {Pearson(Ranks(predicted), Ranks(measured)),
          static_cast<double>(within) / static_cast<double>(archs.size())};
}

// Value at quantile q of `v` (nearest rank below).
double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr,
                 "usage: %s latency devices samples device_id truth [overrides] [--draws=N] "
                 "[--primitive_from=N]\n",
                 argv[0]);
    return 2;
  }
  absl::StatusOr<std::vector<maplex::core::DeviceData>> devices =
      maplex::client::LoadLatencyData(argv[1], argv[2]);
  if (!devices.ok()) {
    std::fprintf(stderr, "%s\n", std::string(devices.status().message()).c_str());
    return 1;
  }
  maplex::core::MapleConfig config;
  int draws = 0;
  int primitive_from = maplex::core::MapleConfig().primitive_min_samples;
  for (int i = 6; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--draws=")) {
      if (!absl::SimpleAtoi(arg, &draws) || draws < 1) {
        std::fprintf(stderr, "bad --draws\n");
        return 2;
      }
      continue;
    }
    if (absl::ConsumePrefix(&arg, "--primitive_from=")) {
      if (!absl::SimpleAtoi(arg, &primitive_from)) {
        std::fprintf(stderr, "bad --primitive_from\n");
        return 2;
      }
      continue;
    }
    absl::Status s = maplex::core::ApplyMapleConfigOverrides(std::string(arg), &config);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::vector<const maplex::core::DeviceData*> refs;
  for (const auto& d : *devices) refs.push_back(&d);
  auto trainer = maplex::core::ModelTrainer::Create(refs, 1, config);
  if (!trainer.ok()) return 1;

  // Every device of samples.csv, all on this machine: the target and (e.g. A) the others
  // the server held beside it.
  std::map<std::string, maplex::core::DeviceData> measured;
  for (const auto& row : ReadRows(argv[3])) {
    int a;
    double ms;
    if (row.size() >= 3 && absl::SimpleAtoi(row[1], &a) && absl::SimpleAtod(row[2], &ms)) {
      maplex::core::DeviceData& d = measured[row[0]];
      d.device = row[0];
      d.hardware = "this_machine";
      d.descriptor.spec.category = maplex::core::DeviceCategory::kDesktopCpu;
      d.samples.push_back({a, ms});
    }
  }
  maplex::core::DeviceData target = measured[argv[4]];
  target.device = argv[4];
  target.hardware = "this_machine";
  target.descriptor.spec.category = maplex::core::DeviceCategory::kDesktopCpu;
  std::vector<const maplex::core::DeviceData*> same_hardware;
  for (const auto& [id, d] : measured) {
    if (id != target.device) same_hardware.push_back(&d);
  }
  // The output-connected truth cells.
  std::vector<int> truth_archs;
  std::vector<double> truth_ms;
  for (const auto& row : ReadRows(argv[5])) {
    int a;
    double ms;
    if (row.size() < 2 || !absl::SimpleAtoi(row[0], &a) || !absl::SimpleAtod(row[1], &ms)) continue;
    if (!Nb201Space::CellOutputConnected(Nb201Space::Get().CellAt(a))) continue;
    truth_archs.push_back(a);
    truth_ms.push_back(ms);
  }

  if (draws == 0) {
    absl::StatusOr<maplex::core::DeviceTable> table =
        (*trainer)->Fit(target, maplex::core::Method::kMapleX, nullptr, same_hardware);
    if (!table.ok()) return 1;
    const Score score = ScoreTable(*table, truth_archs, truth_ms);
    std::printf("%s: %zu samples, %zu cells, rho %.3f, within10 %.3f | %s\n", argv[4],
                target.samples.size(), truth_archs.size(), score.rho, score.within10,
                table->fit.c_str());
    return 0;
  }

  constexpr int kSamples = 10, kCheck = 100;
  if (truth_archs.size() < 2 * kSamples + kCheck) {
    std::fprintf(stderr, "too few truth cells for --draws\n");
    return 1;
  }
  absl::StatusOr<maplex::core::MeasurementPlanner> planner =
      maplex::core::MeasurementPlanner::Build(*devices, Nb201Space::Get(), 4, primitive_from);
  if (!planner.ok()) return 1;
  for (const bool planned : {true, false}) {
    std::mt19937_64 rng(1);
    std::vector<double> rhos, within10s;
    for (int draw = 0; draw < draws; ++draw) {
      // Positions into the truth cells: the first `kSamples` become samples, the next
      // `kCheck` are scored.
      std::vector<int> order(truth_archs.size());
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      if (planned) {
        std::vector<int32_t> pool;
        for (size_t i = 0; i < order.size() / 2; ++i) pool.push_back(truth_archs[order[i]]);
        const std::vector<int32_t> picks = planner->Next({}, kSamples, pool);
        std::stable_partition(order.begin(), order.end(), [&](int i) {
          return std::find(picks.begin(), picks.end(), truth_archs[i]) != picks.end();
        });
      }
      maplex::core::DeviceData drawn = target;
      drawn.samples.clear();
      for (int i = 0; i < kSamples; ++i) {
        drawn.samples.push_back({truth_archs[order[i]], truth_ms[order[i]]});
      }
      std::vector<int> check_archs;
      std::vector<double> check_ms;
      for (int i = kSamples; i < kSamples + kCheck; ++i) {
        check_archs.push_back(truth_archs[order[i]]);
        check_ms.push_back(truth_ms[order[i]]);
      }
      absl::StatusOr<maplex::core::DeviceTable> table =
          (*trainer)->Fit(drawn, maplex::core::Method::kMapleX, nullptr, same_hardware);
      if (!table.ok()) return 1;
      const Score score = ScoreTable(*table, check_archs, check_ms);
      rhos.push_back(score.rho);
      within10s.push_back(score.within10);
    }
    std::printf(
        "%s, %-7s %d draws of %d samples, %d checked: rho median %.3f p10 %.3f min %.3f | "
        "within10 median %.3f p10 %.3f min %.3f\n",
        argv[4], planned ? "planner" : "random", draws, kSamples, kCheck, Quantile(rhos, 0.5),
        Quantile(rhos, 0.1), Quantile(rhos, 0), Quantile(within10s, 0.5), Quantile(within10s, 0.1),
        Quantile(within10s, 0));
  }
  return 0;
}

// Scores MAPLE-X on saved onboarding data: trains on the bundled reference devices, adapts
// the target from its samples and compares with fresh measurements of other cells.
//
//   onboard_check <latency.csv.gz> <devices.csv> <samples.csv> <device_id> <truth.csv>
//                 [maple overrides]
// samples.csv: device_id,arch_index,median_ms; truth.csv: arch_index,median_ms,...
// Prints Spearman rho and the share within +-10 % over the output-connected truth cells.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/data_files.h"
#include "core/arch/nb201_space.h"
#include "core/model/trainer.h"

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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s latency devices samples device_id truth [overrides]\n",
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
  if (argc > 6) {
    absl::Status s = maplex::core::ApplyMapleConfigOverrides(argv[6], &config);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::vector<const maplex::core::DeviceData*> refs;
  for (const auto& d : *devices) refs.push_back(&d);
  auto trainer = maplex::core::ModelTrainer::Create(refs, 1, config);
  if (!trainer.ok()) return 1;

  maplex::core::DeviceData target;
  target.device = argv[4];
  target.hardware = "this_machine";
  target.descriptor.spec.category = maplex::core::DeviceCategory::kDesktopCpu;
  for (const auto& row : ReadRows(argv[3])) {
    int a;
    double ms;
    if (row.size() >= 3 && row[0] == argv[4] && absl::SimpleAtoi(row[1], &a) &&
        absl::SimpleAtod(row[2], &ms)) {
      target.samples.push_back({a, ms});
    }
  }
  absl::StatusOr<maplex::core::DeviceTable> table =
      (*trainer)->Fit(target, maplex::core::Method::kMapleX);
  if (!table.ok()) return 1;
  std::vector<double> predicted, measured;
  int within = 0;
  for (const auto& row : ReadRows(argv[5])) {
    int a;
    double ms;
    if (row.size() < 2 || !absl::SimpleAtoi(row[0], &a) || !absl::SimpleAtod(row[1], &ms)) continue;
    if (!Nb201Space::CellOutputConnected(Nb201Space::Get().CellAt(a))) continue;
    const double p = std::exp(table->log_latency[a]);
    predicted.push_back(p);
    measured.push_back(ms);
    within += std::abs(p / ms - 1) <= 0.1 ? 1 : 0;
  }
  std::printf("%s: %zu samples, %zu cells, rho %.3f, within10 %.3f | %s\n", argv[4],
              target.samples.size(), measured.size(), Pearson(Ranks(predicted), Ranks(measured)),
              static_cast<double>(within) / static_cast<double>(measured.size()),
              table->fit.c_str());
  return 0;
}

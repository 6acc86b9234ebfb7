#include "agent/probe/micro_benchmark.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <limits>
#include <numeric>
#include <random>

#include "absl/status/status.h"

namespace maplex::agent {
namespace {

// Keeps a value alive so the optimiser cannot drop the loop that produced it.
template <typename T>
void KeepAlive(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

double SecondsSince(const Clock& clock, int64_t start) { return (clock.NowNanos() - start) / 1e9; }

double MeasureReadBandwidth(const MicroBenchmarkOptions& options, const Clock& clock) {
  std::vector<uint64_t> buffer(options.bandwidth_bytes / sizeof(uint64_t));
  std::iota(buffer.begin(), buffer.end(), 0);  // touch every page before timing
  double best = std::numeric_limits<double>::infinity();
  for (int pass = 0; pass < options.bandwidth_passes; ++pass) {
    const int64_t start = clock.NowNanos();
    uint64_t sum = 0;
    for (uint64_t word : buffer) sum += word;
    KeepAlive(sum);
    best = std::min(best, SecondsSince(clock, start));
  }
  return buffer.size() * sizeof(uint64_t) / std::max(best, 1e-9) / 1e9;
}

double MeasureGemm(const MicroBenchmarkOptions& options, const Clock& clock) {
  const int n = options.gemm_size;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  Eigen::MatrixXf a = Eigen::MatrixXf::NullaryExpr(n, n, [&] { return uniform(rng); });
  Eigen::MatrixXf b = Eigen::MatrixXf::NullaryExpr(n, n, [&] { return uniform(rng); });
  Eigen::MatrixXf c(n, n);
  c.noalias() = a * b;  // untimed: first-touch, frequency ramp-up
  double best = std::numeric_limits<double>::infinity();
  for (int repeat = 0; repeat < options.gemm_repeats; ++repeat) {
    const int64_t start = clock.NowNanos();
    c.noalias() = a * b;
    KeepAlive(c(0, 0));
    best = std::min(best, SecondsSince(clock, start));
  }
  return 2.0 * n * n * n / std::max(best, 1e-9) / 1e9;
}

// One node per 64-byte line so that each load is a new line; the cycle order is random
// (Sattolo's algorithm gives a single cycle) so hardware prefetchers cannot follow it.
double MeasureChase(int64_t bytes, int64_t loads, const Clock& clock) {
  struct alignas(64) Line {
    Line* next;
  };
  const size_t lines = std::max<size_t>(2, bytes / sizeof(Line));
  std::vector<Line> nodes(lines);
  std::vector<size_t> order(lines);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(lines);
  for (size_t i = lines - 1; i > 0; --i) {
    std::swap(order[i], order[std::uniform_int_distribution<size_t>(0, i - 1)(rng)]);
  }
  for (size_t i = 0; i < lines; ++i) nodes[order[i]].next = &nodes[order[(i + 1) % lines]];
  Line* p = &nodes[0];
  // Warm the caches and TLB; past `loads` lines the set is beyond the caches anyway.
  for (size_t i = 0; i < std::min<size_t>(lines, loads); ++i) p = p->next;
  // Best of three segments: a preemption spoils one segment, not the estimate.
  double best = std::numeric_limits<double>::infinity();
  for (int segment = 0; segment < 3; ++segment) {
    const int64_t start = clock.NowNanos();
    for (int64_t i = 0; i < loads; ++i) p = p->next;
    KeepAlive(p);
    best = std::min(best, (clock.NowNanos() - start) / double(loads));
  }
  return best;
}

}  // namespace

absl::StatusOr<MicroBenchmarkFingerprint> RunMicroBenchmarks(const MicroBenchmarkOptions& options,
                                                             const Clock& clock) {
  if (options.bandwidth_bytes < 4096 || options.bandwidth_passes <= 0 || options.gemm_size <= 0 ||
      options.gemm_repeats <= 0 || options.chase_loads <= 0 || options.chase_min_bytes < 128 ||
      options.chase_max_bytes < options.chase_min_bytes ||
      options.chase_max_bytes > (int64_t{1} << 30)) {
    return absl::InvalidArgumentError("micro-benchmark options out of range");
  }
  const int64_t start = clock.NowNanos();
  MicroBenchmarkFingerprint result;
  result.memory_bandwidth_gbs = MeasureReadBandwidth(options, clock);
  result.gemm_gflops = MeasureGemm(options, clock);
  for (int64_t bytes = options.chase_min_bytes; bytes <= options.chase_max_bytes; bytes *= 2) {
    result.latency_curve.push_back({bytes, MeasureChase(bytes, options.chase_loads, clock)});
  }
  result.cache_knee_bytes = FindLatencyKnee(result.latency_curve);
  result.elapsed_seconds = SecondsSince(clock, start);
  return result;
}

int64_t FindLatencyKnee(const std::vector<LatencyPoint>& curve) {
  int64_t knee = 0;
  double steepest = 0;
  for (size_t i = 0; i + 1 < curve.size(); ++i) {
    const double ratio = curve[i + 1].nanos_per_load / std::max(curve[i].nanos_per_load, 1e-12);
    if (ratio > steepest) {
      steepest = ratio;
      knee = curve[i].working_set_bytes;
    }
  }
  return knee;
}

}  // namespace maplex::agent

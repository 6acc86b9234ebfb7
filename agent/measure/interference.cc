#include "agent/measure/interference.h"

#include <sys/resource.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace maplex::agent {
namespace {

constexpr int kGemmSize = 192;
constexpr size_t kStreamFloats = (size_t{6} << 20) / sizeof(float);

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

struct ProcessInterferenceSensor::Buffers {
  Eigen::MatrixXf a, b, c;
  std::vector<float> stream;
};

ProcessInterferenceSensor::ProcessInterferenceSensor() : buffers_(new Buffers) {
  // Fixed contents: the kernel's time must not depend on the values it reads.
  buffers_->a = Eigen::MatrixXf::Constant(kGemmSize, kGemmSize, 0.5f);
  buffers_->b = Eigen::MatrixXf::Constant(kGemmSize, kGemmSize, 0.25f);
  buffers_->c = Eigen::MatrixXf::Zero(kGemmSize, kGemmSize);
  buffers_->stream.assign(kStreamFloats, 1.0f);  // touched now: no page faults when timed
}

ProcessInterferenceSensor::~ProcessInterferenceSensor() { delete buffers_; }

int64_t ProcessInterferenceSensor::InvoluntarySwitches() {
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return usage.ru_nivcsw;
}

void ProcessInterferenceSensor::RunReferenceKernel() {
  buffers_->c.noalias() = buffers_->a * buffers_->b;
  float sum = 0;
  for (float x : buffers_->stream) sum += x;
  sink_ += sum + buffers_->c(0, 0);
}

void ProcessInterferenceSensor::Wait(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

ReferenceReading ReadReferenceKernel(InterferenceSensor& sensor, const Clock& wall,
                                     const Clock& cpu, int runs) {
  std::vector<double> wall_ms, cpu_ms;
  for (int i = 0; i < std::max(runs, 1); ++i) {
    const int64_t wall_before = wall.NowNanos(), cpu_before = cpu.NowNanos();
    sensor.RunReferenceKernel();
    cpu_ms.push_back((cpu.NowNanos() - cpu_before) / 1e6);
    wall_ms.push_back((wall.NowNanos() - wall_before) / 1e6);
  }
  return {Median(wall_ms), Median(cpu_ms)};
}

absl::StatusOr<ReferenceBaseline> CalibrateReferenceKernel(InterferenceSensor& sensor,
                                                           const Clock& wall, const Clock& cpu,
                                                           int runs) {
  if (runs < 5) return absl::InvalidArgumentError("calibrating the reference kernel needs 5 runs");
  for (int i = 0; i < runs; ++i) sensor.RunReferenceKernel();
  std::vector<double> wall_ms, cpu_ms;
  for (int i = 0; i < runs; ++i) {
    const int64_t wall_before = wall.NowNanos(), cpu_before = cpu.NowNanos();
    sensor.RunReferenceKernel();
    cpu_ms.push_back((cpu.NowNanos() - cpu_before) / 1e6);
    wall_ms.push_back((wall.NowNanos() - wall_before) / 1e6);
  }
  std::sort(wall_ms.begin(), wall_ms.end());
  std::sort(cpu_ms.begin(), cpu_ms.end());
  ReferenceBaseline baseline;
  baseline.wall_ms = wall_ms[runs / 10];
  baseline.cpu_ms = cpu_ms[runs / 10];
  baseline.calibration_runs = runs;
  return baseline;
}

}  // namespace maplex::agent

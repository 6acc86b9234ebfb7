// Detecting other work on the machine while the agent measures. Two signals, both cheap:
//   - preemption: the process's involuntary context switches (getrusage ru_nivcsw) grow
//     during a timed run when the scheduler gave its CPU to someone else mid-run;
//   - slowdown: a short fixed reference kernel, timed around each measurement, runs slower
//     than its quiet baseline when another process competes for the core, its caches or
//     memory bandwidth even without preempting the agent.
// The measurement protocol (latency_measurer.h) consumes them through this seam; tests pass a
// fake whose kernel advances a fake clock.
//
//   ProcessInterferenceSensor sensor;
//   ReferenceBaseline baseline =
//       *CalibrateReferenceKernel(sensor, RealClock(), ThreadCpuClock(), 40);
//   // ... MeasureLatency(..., MeasurementEnv{&RealClock(), &ThreadCpuClock(), &pinner,
//   //                                        &sensor, &baseline});
#ifndef MAPLEX_AGENT_MEASURE_INTERFERENCE_H_
#define MAPLEX_AGENT_MEASURE_INTERFERENCE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/common/clock.h"

namespace maplex::agent {

class InterferenceSensor {
 public:
  virtual ~InterferenceSensor() = default;
  // Involuntary context switches of this process so far; only differences are meaningful.
  virtual int64_t InvoluntarySwitches() = 0;
  // Runs the fixed reference kernel once on the calling thread (the caller times it). Same
  // work every call, so its time changes only with what else the machine does.
  virtual void RunReferenceKernel() = 0;
  // Leaves the machine alone for `seconds` (the real sensor sleeps) before the protocol looks
  // again whether a disturbance has passed.
  virtual void Wait(double seconds) = 0;
};

// getrusage(RUSAGE_SELF) and a ~1 ms single-threaded kernel: a 192x192x192 float GEMM whose
// operands stay in L2 (sensitive to a co-runner on the core or its sibling) followed by a sum
// over 6 MiB (more than this VM's L2, so it reads the shared L3/memory).
class ProcessInterferenceSensor : public InterferenceSensor {
 public:
  ProcessInterferenceSensor();
  ~ProcessInterferenceSensor() override;
  int64_t InvoluntarySwitches() override;
  void RunReferenceKernel() override;
  void Wait(double seconds) override;

 private:
  struct Buffers;
  Buffers* buffers_;
  double sink_ = 0;  // keeps the kernel's result alive
};

// The reference kernel's time on this process when nothing interferes, in wall and in
// thread-CPU milliseconds (the protocol compares like with like: the clock it times the
// network with). It only moves down: a quieter reading later in the process lowers it
// (ObserveQuiet), so a baseline taken while the machine was busy corrects itself once the
// machine calms down.
struct ReferenceBaseline {
  double wall_ms = 0;
  double cpu_ms = 0;
  int calibration_runs = 0;
  void ObserveQuiet(double wall_reading, double cpu_reading) {
    if (wall_reading > 0 && (wall_ms == 0 || wall_reading < wall_ms)) wall_ms = wall_reading;
    if (cpu_reading > 0 && (cpu_ms == 0 || cpu_reading < cpu_ms)) cpu_ms = cpu_reading;
  }
};

// One reading of the reference kernel: `runs` timed executions, their median (wall and
// thread-CPU milliseconds). The median, not the minimum: a reading must show interference
// that lasts, not whether one run slipped between two time slices.
struct ReferenceReading {
  double wall_ms = 0;
  double cpu_ms = 0;
};
ReferenceReading ReadReferenceKernel(InterferenceSensor& sensor, const Clock& wall,
                                     const Clock& cpu, int runs);

// Runs the reference kernel `runs` times (after as many untimed runs, which also serve as the
// process's warm-up: page faults, the host raising the core's frequency) and returns the 10th
// percentiles of the wall and thread-CPU times: the quiet level even when some runs were
// disturbed.
// InvalidArgument for runs < 5.
absl::StatusOr<ReferenceBaseline> CalibrateReferenceKernel(InterferenceSensor& sensor,
                                                           const Clock& wall, const Clock& cpu,
                                                           int runs);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_MEASURE_INTERFERENCE_H_

// The measurement protocol: how the agent turns a runtime into one latency figure.
//
//   DeviceConfig config;
//   config.hardware_fingerprint = probe.fingerprint;
//   config.threads = 1;
//   AffinityThreadPinner pinner;
//   ProcessInterferenceSensor sensor;
//   ReferenceBaseline baseline =
//       *CalibrateReferenceKernel(sensor, RealClock(), ThreadCpuClock(), 40);
//   MeasurementEnv env{&RealClock(), &ThreadCpuClock(), &pinner, &sensor, &baseline};
//   absl::StatusOr<Measurement> m =
//       MeasureLatency(runtime, arch, config, MeasurementOptions(), env);
//
// Procedure (MeasurementProtocol::version 4; docs/MEASUREMENT.md says why each step is there):
//   1. Pin the calling thread to `threads` CPUs if asked (before Prepare, so that worker
//      threads the runtime starts inherit the set); a refusal is recorded, not fatal.
//   2. Runtime::Prepare(arch, batch, threads); never timed.
//   3. The clock: the calling thread's CPU time when the runtime runs on the calling thread
//      (Runtime::RunsOnCallingThread, i.e. one thread) and options.clock is "auto", so that
//      time the scheduler gave other processes is not counted; else the wall clock. A
//      runtime's own figure (CommandRuntime) always wins.
//   4. With an interference sensor and a baseline: the reference kernel, `reference_runs`
//      times (median), before the warm-up.
//   5. Warm-up: untimed runs until at least `warmups` runs and `warmup_seconds` have passed
//      (by time, not count: a 1 ms network needs more runs than a 50 ms one to reach a steady
//      state of caches, page tables and core frequency).
//   6. Timed runs until, after at least `min_repeats` kept runs spanning `min_seconds`, the
//      estimated CV of the median falls below `target_median_cv`; or `max_repeats` runs; or
//      `max_seconds` of timed runs. A run during which the process was preempted (the
//      sensor's involuntary switches grew) is counted in preempted_runs and, when timed by
//      the wall clock, excluded from the statistics (unless fewer than min_repeats runs
//      would be left).
//      With `interleave_reference` (off by default; and a sensor and baseline), the reference
//      kernel also runs once before every timed run, and the run is scaled by baseline /
//      (median of the last 5 such readings): the machine's speed of the moment is divided out
//      (protocol.corrected, raw_median_ms keeps the unscaled median). Off by default because
//      on this VM it narrowed single cells but shifted oneDNN's level by 5 % between
//      processes (docs/MEASUREMENT.md).
//   7. The reference kernel again; the slowdown of the attempt is the larger of the two
//      readings over the baseline, on the same clock as the runs. Above
//      `interference_threshold`, the measurement is taken again (steps 4-7), at most
//      `interference_retries` times and only while the attempts so far have spent less than
//      `max_seconds` in timed runs; if every attempt is disturbed, the least disturbed one is
//      returned with protocol.interference = "flagged" (after step 9). A clean reading lowers the
//      baseline when it is quieter (ReferenceBaseline::ObserveQuiet).
//   8. Statistics over the kept runs; the CPU set is restored.
//   9. (Version 3.) When every attempt of step 7 was disturbed, the disturbance may pass
//      within seconds (on a shared VM the machine slows in stretches of tens of seconds): the
//      agent leaves the machine alone for 0.25 s, doubling to 2 s, reading the reference
//      kernel after each wait, and as soon as it reads quiet measures again (steps 4-7; a
//      disturbed attempt waits again). Waiting stops after `interference_wait_seconds` in
//      total (for the architecture: the independent measurements of step 10 share it); only
//      then is the least disturbed attempt flagged. protocol.waited_seconds says how long it
//      waited.
//  10. (Version 4; opt-in: `independent_measurements` is 1 by default.) Independent
//      measurements: steps 1-9 again, each with its own Prepare (new buffers, a new warm-up),
//      until `independent_measurements` were taken and the two closest medians agree within
//      `agreement_tolerance` of the lower, or `max_independent_measurements` were taken. The
//      returned measurement is the lower of the two closest. On this VM, in a quiet hour, about
//      one measurement in 14 read 30-50 % slow with no interference the reference kernel saw
//      (the same network in the same process, before and after, read within 2 %); such a
//      reading does not survive a second, independent one. Off by default because it at least
//      doubles the time per architecture and did not improve the onboarding e2e figures when
//      the host was contended (docs/MEASUREMENT.md section 7).
//      protocol.independent_medians_ms keeps every median.
#ifndef MAPLEX_AGENT_MEASURE_LATENCY_MEASURER_H_
#define MAPLEX_AGENT_MEASURE_LATENCY_MEASURER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/common/clock.h"
#include "agent/measure/interference.h"
#include "agent/measure/measurement.h"
#include "agent/measure/thread_pinner.h"
#include "agent/runtime/runtime.h"

namespace maplex::agent {

struct MeasurementOptions {
  int warmups = 3;
  double warmup_seconds = 0.1;
  int min_repeats = 10;
  double min_seconds = 0.2;
  int max_repeats = 1000;
  double max_seconds = 10;
  double target_median_cv = 0.01;
  bool pin_threads = true;
  std::string clock = "auto";  // "auto" (step 3) or "wall"
  int reference_runs = 5;      // reference kernel runs per reading; 0: no interference check
  double interference_threshold = 1.10;
  int interference_retries = 2;
  // Step 9: after the retries, at most this long waiting for the reference kernel to read
  // quiet again before measuring once more.
  double interference_wait_seconds = 10;
  // Also time the reference kernel once before every timed run and scale each run by the
  // baseline over the median of the last 5 such readings: corrects for a machine whose speed
  // drifts within a measurement (protocol.corrected). Needs a sensor and a baseline.
  // Off: see step 6 above.
  bool interleave_reference = false;
  // Step 10: at least this many independent measurements (1: none beyond the first, the
  // default: see docs/MEASUREMENT.md section 7 for what 2 gains and costs on this VM), at most
  // `max_independent_measurements`, until two agree within `agreement_tolerance`.
  int independent_measurements = 1;
  int max_independent_measurements = 3;
  double agreement_tolerance = 0.05;
};

// What the protocol runs with. wall is required; thread_cpu may be null (then "auto" means
// wall); pinner may be null when options.pin_threads is false; sensor and baseline may be null
// (no preemption counts, no interference check). The baseline is updated in place.
struct MeasurementEnv {
  const Clock* wall = nullptr;
  const Clock* thread_cpu = nullptr;
  ThreadPinner* pinner = nullptr;
  InterferenceSensor* sensor = nullptr;
  ReferenceBaseline* baseline = nullptr;
};

// Measures `arch` (any space the runtime builds) on `runtime` in `config` (batch, threads; its
// runtime name is filled in from `runtime`). InvalidArgument for inconsistent options, a
// precision other than "fp32" (the only one the built-in runtimes execute), batch/threads < 1,
// or an env without the wall clock or the pinner the options need. Errors from Prepare or Run
// are returned as they are; nothing partial is returned.
absl::StatusOr<Measurement> MeasureLatency(Runtime& runtime, const core::Architecture& arch,
                                           DeviceConfig config, const MeasurementOptions& options,
                                           const MeasurementEnv& env);

// The same with the wall clock only: no thread-CPU clock, no interference sensor.
absl::StatusOr<Measurement> MeasureLatency(Runtime& runtime, const core::Architecture& arch,
                                           DeviceConfig config, const MeasurementOptions& options,
                                           const Clock& clock, ThreadPinner* pinner);

// Step 10's choice among independent measurements of one architecture (at least one): the
// lower of the two closest medians, with every median in protocol.independent_medians_ms.
// AgreeWithin: whether two of them lie within `tolerance` of the lower (true for one alone).
Measurement ChooseAmongIndependent(std::vector<Measurement> taken);
bool AgreeWithin(const std::vector<Measurement>& taken, double tolerance);

// Independent measurements separated in time, for a list of architectures measured at once
// (`maplex-agent --measure_only --passes`): this machine slows down by ~1.3x in stretches of
// 1-3 s (docs/MEASUREMENT.md section 8), longer than step 10's back-to-back measurements of
// one architecture, shorter than a pass over a list. `measure(i)` measures architecture i
// once. Passes 1 and 2 measure every architecture, in order; each further pass, up to
// `passes`, only those whose measurements do not yet agree within `tolerance`; each
// architecture's result is ChooseAmongIndependent of its measurements. passes <= 1: one
// pass, each measurement returned as it is.
absl::StatusOr<std::vector<Measurement>> MeasureInPasses(
    size_t count, int passes, double tolerance,
    const std::function<absl::StatusOr<Measurement>(size_t)>& measure);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_MEASURE_LATENCY_MEASURER_H_

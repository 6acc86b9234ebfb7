#include "agent/device_agent.h"

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/common/clock.h"
#include "agent/common/random_id.h"
#include "agent/counters/counter_profile.h"
#include "agent/counters/perf_counter_source.h"
#include "agent/counters/reference_workload.h"
#include "agent/measure/interference.h"
#include "agent/measure/thread_pinner.h"
#include "agent/probe/device_probe.h"
#include "agent/probe/file_system.h"
#include "agent/probe/micro_benchmark.h"
#include "agent/runtime/command_runtime.h"
#include "agent/runtime/eigen_runtime.h"
#include "agent/runtime/onednn_runtime.h"
#include "agent/spool/spool.h"
#include "agent/uplink/uplink.h"
#include "absl/hash/hash.h"
#include "core/arch/nb201_space.h"
#include "core/arch/space_registry.h"
#include "core/hardware/spec_proto.h"
#include "core/planning/measurement_planner.h"
#include "maplex/v1/ingest.grpc.pb.h"
#include "maplex/v1/registry.grpc.pb.h"
#include "platform/log.h"

namespace maplex::agent {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return s.ok() ? absl::OkStatus()
                : absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// Calls `rpc` until it succeeds, fails for good, or `timeout` passes (jittered backoff).
template <typename Rpc>
absl::Status CallWithRetry(Rpc rpc, absl::Duration timeout, const std::string& what) {
  Backoff backoff(absl::Milliseconds(250), absl::Seconds(5), std::random_device()());
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    absl::Status s = FromGrpc(rpc(&context));
    if (s.ok() || !IsRetryable(s)) return s;
    absl::Duration wait = backoff.Next();
    if (absl::Now() + wait > deadline) {
      return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
    }
    LogWarning("retrying", {{"call", what}, {"error", s.ToString()}});
    absl::SleepFor(wait);
  }
}

// Sleeps for `d`, waking early when `stop` is set (SIGTERM must not wait out a 30 s
// backoff).
void SleepUnlessStopped(absl::Duration d, const std::atomic<bool>& stop) {
  const absl::Time until = absl::Now() + d;
  while (!stop) {
    absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    absl::SleepFor(std::min(left, absl::Milliseconds(100)));
  }
}

// The wire form of `arch`: NB201 by its index (understood by servers of every version),
// other spaces by name and canonical string.
void SetArchitecture(const core::Architecture& arch, maplex::v1::Architecture* out) {
  const core::Nb201Space& nb201 = core::Nb201Space::Get();
  if (arch.space() == &nb201) {
    out->set_index(nb201.IndexOf(arch));
    return;
  }
  out->set_space(std::string(arch.space()->name()));
  out->set_canonical(arch.ToString());
}

// A task from NextTasks as an architecture of `space`. InvalidArgument for one of another
// space (a server older than NextTasksRequest.space plans NB201 whatever is asked) or one
// that does not parse.
absl::StatusOr<core::Architecture> TaskArchitecture(const maplex::v1::Architecture& task,
                                                    const core::ArchitectureSpace& space) {
  const core::ArchitectureSpace* task_space =
      core::FindSpace(task.space().empty() ? "nb201" : task.space());
  if (task_space != &space) {
    return absl::InvalidArgumentError(
        absl::StrCat("task of space \"", task.space(), "\", not ", std::string(space.name())));
  }
  switch (task.id_case()) {
    case maplex::v1::Architecture::kCanonical:
      return space.Parse(task.canonical());
    case maplex::v1::Architecture::kCell:
      return space.Parse(task.cell());
    case maplex::v1::Architecture::kIndex:
      if (&space == &core::Nb201Space::Get()) {
        return space.Parse(absl::StrCat(task.index()));
      }
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError("task without an architecture of its space");
}

// Architectures to measure when the server has no plan: NB201's fixed diverse set, or
// `count` seeded random members of another space, none of them in `done`.
std::vector<core::Architecture> LocalTasks(const core::ArchitectureSpace& space, int count,
                                           int budget, uint64_t seed,
                                           const std::set<core::Architecture>& done) {
  std::vector<core::Architecture> out;
  const core::Nb201Space& nb201 = core::Nb201Space::Get();
  if (&space == &nb201) {
    for (int32_t a : core::DiverseArchitectures(nb201, budget + 1)) {
      const core::Architecture arch = nb201.FromCell(nb201.CellAt(a));
      if (!done.count(arch)) out.push_back(arch);
      if (static_cast<int>(out.size()) >= count) break;
    }
    return out;
  }
  // Drawn afresh past what was measured: the space is far larger than any budget.
  for (const core::Architecture& arch : space.Sample(count + static_cast<int>(done.size()), seed)) {
    if (!done.count(arch)) out.push_back(arch);
    if (static_cast<int>(out.size()) >= count) break;
  }
  return out;
}

maplex::v1::Measurement ToProto(const Measurement& m, const std::string& id,
                                const std::string& device_id, const core::Architecture& arch) {
  maplex::v1::Measurement out;
  out.set_id(id);
  out.set_device_id(device_id);
  SetArchitecture(arch, out.mutable_arch());
  out.mutable_stats()->set_median_ms(m.stats.median_ms);
  out.mutable_stats()->set_p90_ms(m.stats.p90_ms);
  out.mutable_stats()->set_stddev_ms(m.stats.stddev_ms);
  out.mutable_stats()->set_repeats(m.stats.repeats);
  maplex::v1::MeasurementProtocol* p = out.mutable_protocol();
  p->set_tool(absl::StrCat("maplex-agent protocol v", m.protocol.version, " ", m.config.runtime));
  p->set_warmups(m.protocol.warmups);
  p->set_min_repeats(m.protocol.min_repeats);
  p->set_max_repeats(m.protocol.max_repeats);
  p->set_target_cv(m.protocol.target_median_cv);
  p->set_threads_pinned(m.protocol.pinned);
  p->set_version(m.protocol.version);
  p->set_clock(m.protocol.timing_source);
  p->set_warmup_seconds(m.protocol.warmup_seconds);
  p->set_min_seconds(m.protocol.min_seconds);
  p->set_timed_runs(m.protocol.timed_runs);
  p->set_preempted_runs(m.protocol.preempted_runs);
  p->set_excluded_runs(m.protocol.excluded_runs);
  p->set_reference_slowdown(m.protocol.reference_slowdown);
  p->set_interference(m.protocol.interference);
  p->set_attempts(m.protocol.attempts);
  p->set_wall_median_ms(m.protocol.wall_median_ms);
  p->set_corrected(m.protocol.corrected);
  p->set_raw_median_ms(m.protocol.raw_median_ms);
  p->set_waited_seconds(m.protocol.waited_seconds);
  p->mutable_independent_medians_ms()->Add(m.protocol.independent_medians_ms.begin(),
                                           m.protocol.independent_medians_ms.end());
  p->set_notes(absl::StrFormat(
      "stop=%s timing=%s cv=%.4f median_cv=%.4f min_ms=%.4f max_ms=%.4f max_seconds=%g "
      "interference=%s slowdown=%.3f waited=%.2fs preempted=%d/%d independent=%zu%s%s",
      m.protocol.stop_reason, m.protocol.timing_source, m.stats.cv, m.stats.median_cv,
      m.stats.min_ms, m.stats.max_ms, m.protocol.max_seconds, m.protocol.interference,
      m.protocol.reference_slowdown, m.protocol.waited_seconds, m.protocol.preempted_runs,
      m.protocol.timed_runs, m.protocol.independent_medians_ms.size(),
      m.protocol.pinning_note.empty() ? "" : " pinning=", m.protocol.pinning_note));
  out.set_measured_at_unix_ms(absl::ToUnixMillis(absl::Now()));
  return out;
}

// Measures `arch` (any space the runtime builds) with the configuration of `options` (the
// protocol of agent/measure/latency_measurer.h).
absl::StatusOr<Measurement> MeasureArch(Runtime& runtime, const core::Architecture& arch,
                                        const std::string& fingerprint, const AgentOptions& options,
                                        const MeasurementEnv& env) {
  DeviceConfig config;
  config.hardware_fingerprint = fingerprint;
  config.batch = options.batch;
  config.threads = options.threads;
  return MeasureLatency(runtime, arch, config, options.measurement, env);
}

// What the protocol measures with in this process: the real clocks, the pinner, and the
// interference sensor with the reference kernel's quiet baseline, calibrated once (its
// untimed runs also warm the process up) unless the options switch the check off.
struct ProcessMeasurementEnv {
  AffinityThreadPinner pinner;
  ProcessInterferenceSensor sensor;
  ReferenceBaseline baseline;
  MeasurementEnv env;

  explicit ProcessMeasurementEnv(const AgentOptions& options) {
    env.wall = &RealClock();
    env.thread_cpu = &ThreadCpuClock();
    env.pinner = &pinner;
    if (options.measurement.reference_runs > 0 && options.reference_calibration_runs >= 5) {
      absl::StatusOr<ReferenceBaseline> calibrated = CalibrateReferenceKernel(
          sensor, RealClock(), ThreadCpuClock(), options.reference_calibration_runs);
      if (calibrated.ok()) baseline = *calibrated;
      env.baseline = &baseline;
      LogInfo("reference_kernel",
              {{"baseline_cpu_ms", absl::StrFormat("%.4f", baseline.cpu_ms)},
               {"baseline_wall_ms", absl::StrFormat("%.4f", baseline.wall_ms)}});
    }
    env.sensor = &sensor;
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Runtime>> MakeRuntime(const AgentOptions& options) {
  if (options.runtime == "eigen") return std::make_unique<EigenRuntime>();
  if (options.runtime == "onednn") return std::make_unique<OneDnnRuntime>();
  if (options.runtime == "command") {
    if (options.command.empty()) {
      return absl::InvalidArgumentError("the command runtime needs --command PROGRAM");
    }
    CommandRuntimeOptions c;
    c.program = options.command;
    c.args = options.command_args;
    return std::make_unique<CommandRuntime>(std::move(c));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("runtime \"", options.runtime, "\" is not one of eigen, onednn, command"));
}

absl::StatusOr<std::vector<Measurement>> MeasureArchitectures(
    const AgentOptions& options, const std::vector<core::Architecture>& archs) {
  absl::StatusOr<std::unique_ptr<Runtime>> runtime = MakeRuntime(options);
  if (!runtime.ok()) return runtime.status();
  absl::StatusOr<DeviceProbe> probe = ProbeDevice(RealFileSystem());
  if (!probe.ok()) return probe.status();
  ProcessMeasurementEnv measuring(options);
  return MeasureInPasses(
      archs.size(), options.passes, options.measurement.agreement_tolerance, [&](size_t i) {
        return MeasureArch(**runtime, archs[i], probe->fingerprint, options, measuring.env);
      });
}

absl::StatusOr<AgentReport> RunDeviceAgent(const AgentOptions& options,
                                           const std::atomic<bool>& stop) {
  const core::ArchitectureSpace* space = core::FindSpace(options.space);
  if (space == nullptr) {
    std::vector<std::string> known;
    for (std::string_view name : core::SpaceNames()) known.emplace_back(name);
    return absl::InvalidArgumentError(absl::StrCat("unknown architecture space \"", options.space,
                                                   "\" (known: ", absl::StrJoin(known, ", "), ")"));
  }
  absl::StatusOr<std::unique_ptr<Runtime>> runtime = MakeRuntime(options);
  if (!runtime.ok()) return runtime.status();

  // 1. Describe the device.
  absl::StatusOr<DeviceProbe> probe = ProbeDevice(RealFileSystem());
  if (!probe.ok()) return probe.status();
  if (!options.machine_identity) {
    probe->machine_identity.clear();
    probe->fingerprint = HardwareFingerprint(*probe);
  }
  for (const std::string& note : probe->notes) LogInfo("probe_note", {{"note", note}});
  LogInfo("probed",
          {{"cpu", probe->cpu_model},
           {"fingerprint", probe->fingerprint},
           {"machine", probe->machine_identity.empty() ? "none" : probe->machine_identity},
           {"cores", absl::StrCat(probe->cores)},
           {"threads", absl::StrCat(probe->threads)}});

  // 2. Enroll it as hardware x runtime x precision x batch x threads.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> opened =
      OpenChannel(options.server, options.security, grpc::ChannelArguments());
  if (!opened.ok()) return opened.status();
  std::shared_ptr<grpc::Channel> channel = *std::move(opened);
  auto registry = maplex::v1::DeviceRegistry::NewStub(channel);
  auto ingest = maplex::v1::Ingest::NewStub(channel);
  maplex::v1::RegisterDeviceRequest enroll;
  enroll.set_id(options.device_id);
  enroll.set_hardware_fingerprint(probe->fingerprint);
  enroll.set_hardware_name(probe->board.empty() ? probe->cpu_model
                                                : absl::StrCat(probe->board, " (", probe->cpu_model, ")"));
  core::HardwareSpec spec = probe->spec;
  spec.batch_size = options.batch;
  spec.runtime_threads = options.threads;
  core::SpecToProto(spec, enroll.mutable_spec(), enroll.mutable_config());
  enroll.mutable_config()->set_runtime((*runtime)->name());
  for (const auto& [k, v] : options.labels) (*enroll.mutable_labels())[k] = v;
  maplex::v1::RegisterDeviceResponse enrolled;
  if (absl::Status s = CallWithRetry(
          [&](grpc::ClientContext* c) { return registry->RegisterDevice(c, enroll, &enrolled); },
          options.connect_timeout, "RegisterDevice");
      !s.ok()) {
    return s;
  }
  AgentReport report;
  report.device_id = enrolled.device().id();
  LogInfo("enrolled", {{"device", report.device_id},
                       {"created", enrolled.created() ? "true" : "false"},
                       {"runtime", (*runtime)->name()},
                       {"space", std::string(space->name())}});

  // 3. Counters around the reference workload, micro-benchmarks: the descriptor.
  maplex::v1::ReportDescriptorRequest descriptor;
  descriptor.set_device_id(report.device_id);
  PerfCounterSource perf(RealClock());
  absl::StatusOr<CounterReport> counters =
      CountReferenceWorkload(perf, **runtime, options.reference_runs);
  if (counters.ok()) {
    core::HardwareDescriptor d = MakeHardwareDescriptor(spec, *counters);
    int available = 0;
    for (const core::CounterReading& r : d.counters) {
      maplex::v1::CounterValue* c = descriptor.add_counters();
      c->set_name(r.name);
      c->set_available(r.available);
      c->set_unavailable_reason(r.unavailable_reason);
      if (r.available) {
        c->set_value(r.value);
        ++available;
      }
    }
    descriptor.set_reference_workload_seconds(d.reference_workload_seconds);
    LogInfo("counters_read", {{"available", absl::StrCat(available)},
                              {"total", absl::StrCat(d.counters.size())}});
  } else {
    LogWarning("counters_failed", {{"error", counters.status().ToString()}});
  }
  if (options.micro_benchmarks) {
    absl::StatusOr<MicroBenchmarkFingerprint> mb =
        RunMicroBenchmarks(MicroBenchmarkOptions(), RealClock());
    if (mb.ok()) {
      (*descriptor.mutable_microbenchmarks())["memory_bandwidth_gbs"] = mb->memory_bandwidth_gbs;
      (*descriptor.mutable_microbenchmarks())["gemm_gflops"] = mb->gemm_gflops;
      (*descriptor.mutable_microbenchmarks())["cache_knee_bytes"] =
          static_cast<double>(mb->cache_knee_bytes);
    }
  }
  maplex::v1::ReportDescriptorResponse reported;
  if (absl::Status s = CallWithRetry(
          [&](grpc::ClientContext* c) { return ingest->ReportDescriptor(c, descriptor, &reported); },
          options.connect_timeout, "ReportDescriptor");
      !s.ok()) {
    return s;
  }

  // 4. The spool; deliver what an earlier run left behind.
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(options.spool_path);
  if (!spool.ok()) return spool.status();
  UplinkOptions uplink_options;
  uplink_options.seed = std::random_device()();  // jitter only: no need for more bits
  Uplink uplink(spool->get(), channel, uplink_options);
  if (absl::Status s = uplink.SendPending(); !s.ok()) {
    LogWarning("uplink_deferred", {{"error", s.ToString()}});
  }

  // 5. Measure what the server asks for, until the budget is spent.
  ProcessMeasurementEnv measuring(options);
  std::set<core::Architecture> done;
  bool stepped_back = false;
  while (report.measured < options.budget && !stop) {
    if (report.measured >= options.k && !stepped_back) {
      // The first k make the device predictable; the rest must not disturb its owner.
      setpriority(PRIO_PROCESS, 0, 10);
      stepped_back = true;
      LogInfo("lowered_priority", {{"after", absl::StrCat(report.measured)}});
    }
    maplex::v1::NextTasksRequest ask;
    ask.set_device_id(report.device_id);
    ask.set_count(std::min(10, options.budget - report.measured));
    ask.set_space(std::string(space->name()));
    maplex::v1::NextTasksResponse tasks;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::vector<core::Architecture> archs;
    if (ingest->NextTasks(&context, ask, &tasks).ok()) {
      for (const maplex::v1::Architecture& a : tasks.archs()) {
        absl::StatusOr<core::Architecture> arch = TaskArchitecture(a, *space);
        if (!arch.ok()) {
          LogWarning("task_skipped", {{"error", arch.status().ToString()}});
          continue;
        }
        if (!done.count(*arch)) archs.push_back(*arch);
      }
      report.task_strategy = tasks.strategy();
    }
    if (archs.empty()) {
      // The server has no opinion (or cannot be reached, or plans no such space yet).
      archs = LocalTasks(*space, ask.count(), options.budget,
                         absl::HashOf(report.device_id, report.measured), done);
      report.task_strategy = "local-diverse";
      if (archs.empty()) break;
    }
    for (const core::Architecture& arch : archs) {
      if (report.measured >= options.budget || stop) break;
      absl::StatusOr<Measurement> m =
          MeasureArch(**runtime, arch, probe->fingerprint, options, measuring.env);
      if (!m.ok()) return m.status();
      absl::StatusOr<std::string> id = NewMeasurementId();
      if (!id.ok()) return id.status();
      maplex::v1::Measurement proto = ToProto(*m, *id, report.device_id, arch);
      if (absl::Status s = (*spool)->Add(proto); !s.ok()) return s;
      done.insert(arch);
      ++report.measured;
      LogInfo("measured", {{"arch", arch.ToString()},
                           {"median_ms", absl::StrFormat("%.4f", m->stats.median_ms)},
                           {"repeats", absl::StrCat(m->stats.repeats)},
                           {"stop", m->protocol.stop_reason},
                           {"interference", m->protocol.interference}});
      if (absl::Status s = uplink.SendPending(); !s.ok()) {
        LogWarning("uplink_deferred", {{"error", s.ToString()}});
      }
    }
  }

  // 6. Deliver everything; as a daemon, keep the spool drained until stopped.
  // Refused measurements go to the spool's dead letters (logged as dead_lettered) and do
  // not hold the rest back; a server that is down is retried with backoff (up to 30 s).
  absl::Status drained = uplink.Drain(options.connect_timeout);
  while (options.daemon && !stop) {
    SleepUnlessStopped(uplink.Tick(absl::Milliseconds(500)), stop);
  }
  if (options.daemon) {
    absl::StatusOr<int64_t> left = (*spool)->Depth();
    drained = left.ok() && *left == 0 ? absl::OkStatus() : uplink.SendPending();
  }
  report.delivered = uplink.acked();
  report.dead_lettered = uplink.dead_lettered();
  absl::StatusOr<int64_t> left = (*spool)->Depth();
  report.left_in_spool = left.ok() ? *left : -1;
  absl::StatusOr<int64_t> dead = (*spool)->DeadLetterCount();
  report.dead_letters = dead.ok() ? *dead : -1;
  if (!drained.ok()) LogWarning("undelivered", {{"error", drained.ToString()}});
  LogInfo("agent_done", {{"device", report.device_id},
                         {"measured", absl::StrCat(report.measured)},
                         {"delivered", absl::StrCat(report.delivered)},
                         {"dead_lettered", absl::StrCat(report.dead_lettered)},
                         {"left_in_spool", absl::StrCat(report.left_in_spool)},
                         {"dead_letters", absl::StrCat(report.dead_letters)}});
  return report;
}

}  // namespace maplex::agent

// maplex-agent: parses flags (with MAPLEX_AGENT_* environment fallbacks) into
// AgentOptions and runs the agent; SIGTERM/SIGINT stop it after the current measurement,
// with the spool drained as far as the server allows.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agent/device_agent.h"
#include "agent/spool/spool.h"
#include "core/arch/nb201_space.h"
#include "core/arch/space_registry.h"
#include "platform/log.h"
#include "platform/process.h"

using maplex::EnvOr;

ABSL_FLAG(std::string, server, EnvOr("MAPLEX_SERVER", "127.0.0.1:50051"),
          "maplex-server address (env MAPLEX_SERVER)");
ABSL_FLAG(std::string, log_level, EnvOr("MAPLEX_LOG_LEVEL", "info"),
          "least severe log events written: debug, info, warning, error (env MAPLEX_LOG_LEVEL)");
ABSL_FLAG(std::string, device_id, EnvOr("MAPLEX_AGENT_DEVICE_ID", ""),
          "device id to register; empty lets the server derive one (env MAPLEX_AGENT_DEVICE_ID); "
          "with an agent token, the device the token is bound to");
ABSL_FLAG(bool, machine_identity, true,
          "put this machine's identity (hashed /etc/machine-id) in the hardware fingerprint so "
          "identical machines are distinct devices; false: hardware alone, as agents before it "
          "(keeps an upgraded agent's device, or pools identical machines as one)");
ABSL_FLAG(std::string, token, "", "bearer token (default: env MAPLEX_TOKEN)");
ABSL_FLAG(std::string, token_file, EnvOr("MAPLEX_AGENT_TOKEN_FILE", ""),
          "file holding the bearer token (env MAPLEX_AGENT_TOKEN_FILE)");
ABSL_FLAG(std::string, ca, EnvOr("MAPLEX_AGENT_CA", ""),
          "CA bundle (PEM) that signed the server's certificate: use TLS (env MAPLEX_AGENT_CA)");
ABSL_FLAG(std::string, client_cert, "", "this agent's certificate (PEM), for servers requiring one");
ABSL_FLAG(std::string, client_key, "", "the private key (PEM) of --client_cert");
ABSL_FLAG(std::string, runtime, EnvOr("MAPLEX_AGENT_RUNTIME", "eigen"),
          "eigen, onednn or command (env MAPLEX_AGENT_RUNTIME)");
ABSL_FLAG(std::string, command, "",
          "for --runtime=command: the program and its arguments, space-separated");
ABSL_FLAG(int, threads, 1, "threads the runtime uses");
ABSL_FLAG(int, batch, 1, "images per inference");
ABSL_FLAG(std::string, spool, EnvOr("MAPLEX_AGENT_SPOOL", "maplex-agent-spool.db"),
          "on-disk spool of measurements not yet acknowledged (env MAPLEX_AGENT_SPOOL)");
ABSL_FLAG(int, k, 10, "measurements taken at normal priority before the agent steps back");
ABSL_FLAG(int, budget, 50, "measurements to take in this run");
ABSL_FLAG(bool, once, false, "measure the budget, deliver, and exit (default: stay as a daemon)");
ABSL_FLAG(bool, micro_benchmarks, true, "run the micro-benchmark fingerprint at enrollment");
// The measurement protocol (agent/measure/latency_measurer.h; docs/MEASUREMENT.md says why).
ABSL_FLAG(int, warmups, 3, "untimed runs before each measurement at least");
ABSL_FLAG(double, warmup_seconds, 0.1, "seconds of untimed runs before each measurement at least");
ABSL_FLAG(int, min_repeats, 10, "timed runs per measurement at least");
ABSL_FLAG(double, min_seconds, 0.2, "seconds the timed runs of a measurement span at least");
ABSL_FLAG(int, max_repeats, 1000, "timed runs per measurement at most");
ABSL_FLAG(double, max_seconds, 10, "timed seconds per measurement at most");
ABSL_FLAG(double, target_cv, 0.01, "stop repeating once the median's CV is below this");
ABSL_FLAG(std::string, space, "nb201",
          "architecture space the device is enrolled in and measures: nb201 or fbnet (run the "
          "agent once per space to make the device predictable in several)");
ABSL_FLAG(std::string, measure_clock, "auto",
          "auto: the measuring thread's CPU time when the runtime runs on it (1 thread), else "
          "the wall clock; wall: always the wall clock");
ABSL_FLAG(bool, pin_threads, true, "pin the measuring thread to CPUs while measuring");
ABSL_FLAG(int, interference_runs, 5,
          "reference-kernel runs timed before and after each measurement to detect other work "
          "on the machine; 0 switches the check off");
ABSL_FLAG(double, interference_threshold, 1.10,
          "a reference-kernel slowdown over its quiet baseline above this marks a measurement "
          "as disturbed");
ABSL_FLAG(int, interference_retries, 2,
          "times a disturbed measurement is taken again before it is kept, flagged");
ABSL_FLAG(double, interference_wait_seconds, 10,
          "after the retries, wait at most this long (backing off) for the reference kernel "
          "to read quiet and measure once more before keeping a measurement flagged");
ABSL_FLAG(bool, interleave_reference, false,
          "time the reference kernel before every timed run and scale the run by its quiet "
          "baseline over it (corrects a machine whose speed drifts)");
ABSL_FLAG(int, independent_measurements, 1,
          "measure each architecture at least this many times independently (each prepared "
          "afresh) and keep the lower of the two that agree best; 1: once (the default; "
          "docs/MEASUREMENT.md section 7 says what 2 gains and costs)");
ABSL_FLAG(int, max_independent_measurements, 3,
          "independent measurements stop here even when no two agree within "
          "--agreement_tolerance");
ABSL_FLAG(double, agreement_tolerance, 0.05,
          "two independent medians agree when they differ by at most this share of the lower");
ABSL_FLAG(int, passes, 1,
          "--measure_only: measure the whole list this many times (1-3): two passes measure "
          "every architecture twice, seconds apart, and keep the lower of the two closest; a "
          "third measures again those whose two differ by more than --agreement_tolerance "
          "(docs/MEASUREMENT.md section 8); not with --independent_measurements > 1");
ABSL_FLAG(bool, csv_protocol, false,
          "--measure_only: also print what the protocol did (clock, interference, "
          "reference_slowdown, preempted_runs, timed_runs, attempts, wall_median_ms, ..., "
          "independent_medians_ms separated by ';')");
ABSL_FLAG(std::string, measure_only, "",
          "measure the architectures listed in this file (one per line: an NB201 index or cell "
          "string, or the canonical string of any registered space, e.g. FBNet's "
          "k5_e6-skip-...) locally and print CSV; nothing is sent to a server");
ABSL_FLAG(std::string, dead_letters, "",
          "act on the spool's dead letters (measurements the server refused for good) and exit: "
          "show (print them), requeue (send them again on the next run), clear (forget them)");
ABSL_FLAG(std::vector<std::string>, label, {}, "KEY=VALUE labels for the device (repeatable, comma-separated)");

// --dead_letters=show|requeue|clear on the spool at `spool_path`; the process's exit code.
int RunDeadLetterAction(const std::string& action, const std::string& spool_path) {
  if (action != "show" && action != "requeue" && action != "clear") {
    std::fprintf(stderr, "maplex-agent: --dead_letters wants show, requeue or clear, got \"%s\"\n",
                 action.c_str());
    return 2;
  }
  auto spool = maplex::agent::Spool::Open(spool_path);
  if (!spool.ok()) {
    std::fprintf(stderr, "maplex-agent: %s\n", spool.status().ToString().c_str());
    return 1;
  }
  if (action == "show") {
    auto letters = (*spool)->DeadLetters(std::numeric_limits<int>::max());
    if (!letters.ok()) {
      std::fprintf(stderr, "maplex-agent: %s\n", letters.status().ToString().c_str());
      return 1;
    }
    std::printf("measurement_id\tdevice_id\trefused_at\treason\n");
    for (const maplex::agent::DeadLetter& d : *letters) {
      std::printf("%s\t%s\t%s\t%s\n", d.measurement.id().c_str(), d.measurement.device_id().c_str(),
                  absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(d.refused_at_unix_ms),
                                   absl::UTCTimeZone())
                      .c_str(),
                  d.reason.c_str());
    }
    return 0;
  }
  auto moved = action == "requeue" ? (*spool)->RequeueDeadLetters() : (*spool)->ClearDeadLetters();
  if (!moved.ok()) {
    std::fprintf(stderr, "maplex-agent: %s\n", moved.status().ToString().c_str());
    return 1;
  }
  std::printf("%s %lld dead letters\n", action == "requeue" ? "requeued" : "cleared",
              static_cast<long long>(*moved));
  return 0;
}

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "maplex-agent: enrolls this device with a maplex server, measures NAS-Bench-201\n"
      "latencies and streams them, never losing one.\n"
      "Usage: maplex-agent --server=HOST:PORT [--runtime=eigen|onednn|command] [--threads=N]\n"
      "       [--batch=N] [--spool=FILE] [--budget=N] [--k=N] [--once]\n"
      "       [--token_file=F --device_id=ID] [--ca=CA.pem [--client_cert=C --client_key=K]]");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<maplex::LogLevel> log_level = maplex::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!log_level.ok()) {
    std::fprintf(stderr, "maplex-agent: --log_level: %s\n",
                 std::string(log_level.status().message()).c_str());
    return 2;
  }
  maplex::SetMinLogLevel(*log_level);

  maplex::agent::AgentOptions options;
  options.server = absl::GetFlag(FLAGS_server);
  absl::StatusOr<std::string> token =
      maplex::ResolveToken(absl::GetFlag(FLAGS_token), absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) {
    std::fprintf(stderr, "maplex-agent: %s\n", std::string(token.status().message()).c_str());
    return 2;
  }
  options.security.token = *token;
  options.security.ca_file = absl::GetFlag(FLAGS_ca);
  options.security.client_cert_file = absl::GetFlag(FLAGS_client_cert);
  options.security.client_key_file = absl::GetFlag(FLAGS_client_key);
  options.device_id = absl::GetFlag(FLAGS_device_id);
  options.machine_identity = absl::GetFlag(FLAGS_machine_identity);
  options.runtime = absl::GetFlag(FLAGS_runtime);
  std::vector<std::string> command =
      absl::StrSplit(absl::GetFlag(FLAGS_command), ' ', absl::SkipEmpty());
  if (!command.empty()) {
    options.command = command[0];
    options.command_args.assign(command.begin() + 1, command.end());
  }
  options.threads = absl::GetFlag(FLAGS_threads);
  options.batch = absl::GetFlag(FLAGS_batch);
  options.spool_path = absl::GetFlag(FLAGS_spool);
  options.space = absl::GetFlag(FLAGS_space);
  options.k = absl::GetFlag(FLAGS_k);
  options.budget = absl::GetFlag(FLAGS_budget);
  options.daemon = !absl::GetFlag(FLAGS_once);
  options.micro_benchmarks = absl::GetFlag(FLAGS_micro_benchmarks);
  options.measurement.warmups = absl::GetFlag(FLAGS_warmups);
  options.measurement.warmup_seconds = absl::GetFlag(FLAGS_warmup_seconds);
  options.measurement.min_repeats = absl::GetFlag(FLAGS_min_repeats);
  options.measurement.min_seconds = absl::GetFlag(FLAGS_min_seconds);
  options.measurement.max_repeats = absl::GetFlag(FLAGS_max_repeats);
  options.measurement.max_seconds = absl::GetFlag(FLAGS_max_seconds);
  options.measurement.target_median_cv = absl::GetFlag(FLAGS_target_cv);
  options.measurement.clock = absl::GetFlag(FLAGS_measure_clock);
  options.measurement.pin_threads = absl::GetFlag(FLAGS_pin_threads);
  options.measurement.reference_runs = absl::GetFlag(FLAGS_interference_runs);
  options.measurement.interference_threshold = absl::GetFlag(FLAGS_interference_threshold);
  options.measurement.interference_retries = absl::GetFlag(FLAGS_interference_retries);
  options.measurement.interference_wait_seconds = absl::GetFlag(FLAGS_interference_wait_seconds);
  options.measurement.interleave_reference = absl::GetFlag(FLAGS_interleave_reference);
  options.measurement.independent_measurements = absl::GetFlag(FLAGS_independent_measurements);
  options.passes = absl::GetFlag(FLAGS_passes);
  if (options.passes < 1 || options.passes > 3 ||
      (options.passes > 1 && options.measurement.independent_measurements > 1)) {
    std::fprintf(stderr,
                 "maplex-agent: --passes must be 1-3, and 1 with --independent_measurements > 1 "
                 "(both record their medians in independent_medians_ms)\n");
    return 2;
  }
  options.measurement.max_independent_measurements =
      std::max(absl::GetFlag(FLAGS_max_independent_measurements),
               options.measurement.independent_measurements);
  options.measurement.agreement_tolerance = absl::GetFlag(FLAGS_agreement_tolerance);
  // A short run (tests pass --max_repeats=15) must not be refused for a default minimum.
  options.measurement.min_repeats =
      std::min(options.measurement.min_repeats, options.measurement.max_repeats);
  for (const std::string& label : absl::GetFlag(FLAGS_label)) {
    size_t eq = label.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "maplex-agent: --label wants KEY=VALUE, got \"%s\"\n", label.c_str());
      return 2;
    }
    options.labels[label.substr(0, eq)] = label.substr(eq + 1);
  }
  if (options.budget < 0 || options.k < 0 || options.threads < 1 || options.batch < 1) {
    std::fprintf(stderr, "maplex-agent: --budget and --k must be >= 0, --threads and --batch >= 1\n");
    return 2;
  }

  if (std::string action = absl::GetFlag(FLAGS_dead_letters); !action.empty()) {
    return RunDeadLetterAction(action, options.spool_path);
  }

  if (std::string path = absl::GetFlag(FLAGS_measure_only); !path.empty()) {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "maplex-agent: cannot read %s\n", path.c_str());
      return 1;
    }
    std::vector<maplex::core::Architecture> archs;
    for (std::string line; std::getline(in, line);) {
      line = std::string(absl::StripAsciiWhitespace(line));
      if (line.empty() || line[0] == '#') continue;
      // The first registered space that parses the line (NB201 also takes its index).
      std::optional<maplex::core::Architecture> arch;
      for (std::string_view space : maplex::core::SpaceNames()) {
        absl::StatusOr<maplex::core::Architecture> parsed =
            maplex::core::FindSpace(space)->Parse(line);
        if (parsed.ok()) {
          arch = *parsed;
          break;
        }
      }
      if (!arch) {
        std::fprintf(stderr, "maplex-agent: %s: \"%s\" is no architecture of any space\n",
                     path.c_str(), line.c_str());
        return 2;
      }
      archs.push_back(*arch);
    }
    auto measured = maplex::agent::MeasureArchitectures(options, archs);
    if (!measured.ok()) {
      std::fprintf(stderr, "maplex-agent: %s\n", measured.status().ToString().c_str());
      return 1;
    }
    // arch_index (the NB201 index; empty in other spaces) stays first for existing readers.
    const bool csv_protocol = absl::GetFlag(FLAGS_csv_protocol);
    std::printf("arch_index,median_ms,p90_ms,stddev_ms,repeats,stop_reason,arch%s\n",
                csv_protocol ? ",clock,interference,reference_slowdown,preempted_runs,timed_runs,"
                               "attempts,wall_median_ms,p10_ms,min_ms,raw_median_ms,waited_seconds,"
                               "independent_medians_ms"
                             : "");
    const maplex::core::Nb201Space& nb201 = maplex::core::Nb201Space::Get();
    for (const maplex::agent::Measurement& m : *measured) {
      const std::string index =
          m.arch.space() == &nb201 ? std::to_string(nb201.IndexOf(m.arch)) : "";
      std::printf("%s,%.6f,%.6f,%.6f,%d,%s,%s", index.c_str(), m.stats.median_ms, m.stats.p90_ms,
                  m.stats.stddev_ms, m.stats.repeats, m.protocol.stop_reason.c_str(),
                  m.arch.ToString().c_str());
      if (csv_protocol) {
        const maplex::agent::MeasurementProtocol& p = m.protocol;
        std::printf(",%s,%s,%.4f,%d,%d,%d,%.6f,%.6f,%.6f,%.6f,%.2f", p.timing_source.c_str(),
                    p.interference.c_str(), p.reference_slowdown, p.preempted_runs, p.timed_runs,
                    p.attempts, p.wall_median_ms, m.stats.p10_ms, m.stats.min_ms, p.raw_median_ms,
                    p.waited_seconds);
        std::printf(",%s",
                    absl::StrJoin(p.independent_medians_ms, ";", [](std::string* out, double v) {
                      absl::StrAppendFormat(out, "%.6f", v);
                    }).c_str());
      }
      std::printf("\n");
    }
    return 0;
  }

  // SIGTERM/SIGINT set `stop`; the agent finishes the measurement at hand and delivers.
  sigset_t stop_signals = maplex::BlockStopSignals();
  std::atomic<bool> stop{false};
  std::thread([&stop, stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    stop = true;
  }).detach();

  absl::StatusOr<maplex::agent::AgentReport> report = maplex::agent::RunDeviceAgent(options, stop);
  if (!report.ok()) {
    std::fprintf(stderr, "maplex-agent: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "device %s: measured %d, delivered %lld, left in spool %lld, dead letters %lld (tasks: %s)\n",
      report->device_id.c_str(), report->measured, static_cast<long long>(report->delivered),
      static_cast<long long>(report->left_in_spool), static_cast<long long>(report->dead_letters),
      report->task_strategy.c_str());
  return report->left_in_spool == 0 ? 0 : 1;
}

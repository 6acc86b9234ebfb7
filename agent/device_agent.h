// The agent's job, start to finish: describe this device, enroll it, measure the
// architectures the server asks for, and deliver every measurement through the spool.
//
//   AgentOptions options;
//   options.server = "127.0.0.1:50051";
//   options.runtime = "onednn";
//   options.threads = 2;
//   absl::StatusOr<AgentReport> report = RunDeviceAgent(options, stop);
//
// Steps: probe (specs, fingerprint, micro-benchmarks) -> RegisterDevice -> counters around
// the reference workload -> ReportDescriptor -> deliver what an earlier run left in the
// spool -> loop { NextTasks (or a fixed diverse set when the server has none) -> measure
// -> spool -> send } until the budget is spent -> drain the spool. After the first k
// measurements the process lowers its priority. In daemon mode it then stays up, keeping
// the spool drained, until stopped.
#ifndef MAPLEX_AGENT_DEVICE_AGENT_H_
#define MAPLEX_AGENT_DEVICE_AGENT_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/measure/latency_measurer.h"
#include "agent/runtime/runtime.h"
#include "platform/grpc_channel.h"

namespace maplex::agent {

struct AgentOptions {
  std::string server = "127.0.0.1:50051";
  ChannelSecurity security;      // TLS and bearer token (an agent token names device_id)
  std::string device_id;         // empty: the server derives one from fingerprint + config
  // Put the machine identity (DeviceProbe::machine_identity) in the hardware fingerprint, so
  // that identical machines are distinct devices. false: the hardware alone, as agents
  // before it did (an upgraded agent keeps its device; identical machines pool as one).
  bool machine_identity = true;
  std::string runtime = "eigen";  // "eigen", "onednn" or "command"
  std::string command;           // the command runtime's program
  std::vector<std::string> command_args;
  int batch = 1;
  int threads = 1;
  std::string spool_path = "maplex-agent-spool.db";
  // The architecture space the device is enrolled in and measures ("nb201", "fbnet"; any
  // name or alias of core/arch/space_registry.h). Run the agent once per space to make the
  // device predictable in several.
  std::string space = "nb201";
  int k = 10;        // measurements at normal priority before the agent steps back
  int budget = 50;   // measurements in this run
  int passes = 1;    // MeasureArchitectures only: passes over the list (MeasureInPasses)
  bool daemon = false;
  bool micro_benchmarks = true;
  int reference_runs = 10;  // reference-workload inferences the counters are read around
  // Runs of the interference reference kernel for its quiet baseline (interference.h); the
  // check is off when measurement.reference_runs is 0.
  int reference_calibration_runs = 40;
  MeasurementOptions measurement;
  std::map<std::string, std::string> labels;
  absl::Duration connect_timeout = absl::Minutes(2);  // enrolling, and draining at the end
};

struct AgentReport {
  std::string device_id;
  int measured = 0;         // measurements taken in this run
  int64_t delivered = 0;    // acknowledged by the server in this run (earlier runs' too)
  int64_t dead_lettered = 0;  // refused for good by the server in this run
  int64_t left_in_spool = 0;
  int64_t dead_letters = 0;   // in the spool's dead-letter table at the end (all runs)
  std::string task_strategy;  // how the last tasks were chosen
};

// The runtime named by options.runtime. InvalidArgument for an unknown name, or
// "command" without a program.
absl::StatusOr<std::unique_ptr<Runtime>> MakeRuntime(const AgentOptions& options);

// Runs the agent until the budget is spent (and, as a daemon, until `stop` is set).
// Fails when the device cannot be enrolled or measured; a server that cannot be reached
// at the end leaves the measurements in the spool (reported in left_in_spool).
absl::StatusOr<AgentReport> RunDeviceAgent(const AgentOptions& options,
                                           const std::atomic<bool>& stop);

// Measures `archs` (of any space the runtime builds) with the runtime and configuration of
// `options`, locally: nothing is enrolled, spooled or sent. For checking a device's
// predictions against fresh measurements. One measurement per architecture, in order; with
// options.passes > 1, the lower of the two closest of that many passes over the list
// (MeasureInPasses).
absl::StatusOr<std::vector<Measurement>> MeasureArchitectures(
    const AgentOptions& options, const std::vector<core::Architecture>& archs);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_DEVICE_AGENT_H_

// "command": drives an external program that runs the network itself, e.g. a vendor
// runtime on an NPU or a Python script around a framework, and takes its latencies.
//
//   CommandRuntimeOptions options;
//   options.program = "/opt/npu/bench";
//   options.args = {"--model-dir=/m"};
//   CommandRuntime runtime(options);
//   runtime.Prepare(arch, /*batch=*/1, /*threads=*/4);   // any registered space
//   absl::StatusOr<std::optional<double>> ms = runtime.Run();   // the program's figure
//
// Protocol (line-based, one long-lived child per Prepare, so process start-up and model
// loading are never timed):
//   1. The agent starts, for an NB201 architecture (as protocol version 1 always did)
//        <program> <args...> --cell=<NB201 string> --batch=<B> --threads=<T>
//      and for an architecture of any other registered space
//        <program> <args...> --space=<space> --arch=<canonical string> --batch=<B> --threads=<T>
//      with pipes on stdin and stdout; stderr is inherited (the agent's log).
//      <NB201 string> is e.g. |nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|;
//      <space> a core/arch/space_registry.h name ("fbnet"), <canonical string> that space's
//      Format ("k5_e6-skip-k3_e1_g2-..." for FBNet, core/arch/fbnet_space.h). A program
//      that cannot build the space should exit non-zero (step 2 then fails Unavailable).
//   2. The program builds the network and prints a line starting with "ready".
//   3. For every run the agent writes the line "run"; the program runs one inference and
//      prints one line: the latency in milliseconds as a decimal number ("3.217"), or
//      "error <message>".
//   4. The agent closes the program's stdin to end; the program exits. One that has not
//      exited 2 s later is killed, with everything it started (it runs in its own
//      process group).
// A reply that does not come within `reply_timeout_ms` fails the call (DeadlineExceeded)
// and kills the program; the next Prepare starts a fresh one.
#ifndef MAPLEX_AGENT_RUNTIME_COMMAND_RUNTIME_H_
#define MAPLEX_AGENT_RUNTIME_COMMAND_RUNTIME_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "agent/runtime/runtime.h"

namespace maplex::agent {

struct CommandRuntimeOptions {
  std::string program;            // looked up in PATH if it has no '/'
  std::vector<std::string> args;  // passed before the protocol's own arguments
  int reply_timeout_ms = 60'000;  // for "ready" and for each run's reply
};

class CommandRuntime : public Runtime {
 public:
  explicit CommandRuntime(CommandRuntimeOptions options);
  ~CommandRuntime() override;  // ends the program as in step 4
  CommandRuntime(const CommandRuntime&) = delete;
  CommandRuntime& operator=(const CommandRuntime&) = delete;

  // "command:" + the program's file name.
  std::string name() const override;
  // Starts the program (ending any previous one) and waits for "ready". Unavailable if
  // it cannot be started or exits first, with its exit status.
  // InvalidArgument for the empty architecture (no space).
  using Runtime::Prepare;
  absl::Status Prepare(const core::Architecture& arch, int batch, int threads) override;
  // The program's latency in ms; Internal for an "error" reply or one that is not a
  // positive finite number.
  absl::StatusOr<std::optional<double>> Run() override;
  // Unimplemented: the program's output stays on its side.
  absl::StatusOr<std::vector<float>> Output() const override;

 private:
  absl::StatusOr<std::string> ReadLine();
  absl::Status WriteLine(const std::string& line);
  // Closes the pipes and reaps the child; kills it unless it exits within `grace_ms`.
  void Stop(int grace_ms);
  std::string DescribeExit();

  CommandRuntimeOptions options_;
  pid_t child_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string pending_;  // bytes read past the last line
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_COMMAND_RUNTIME_H_

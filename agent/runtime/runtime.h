// Runtime: the seam between the measurement protocol and whatever executes a network.
// Built in: "eigen" (EigenRuntime) and "onednn" (OneDnnRuntime) execute the full NB201
// network of nb201_network.h or the FBNet network of fbnet_network.h on the CPU; "command"
// (CommandRuntime) drives an external program, e.g. a vendor runtime on an accelerator.
//
//   EigenRuntime runtime;
//   absl::StatusOr<core::Architecture> arch = core::ParseArchitecture("fbnet", text);
//   if (absl::Status s = runtime.Prepare(*arch, /*batch=*/1, /*threads=*/2); !s.ok()) ...
//   for (int i = 0; i < 10; ++i) runtime.Run();
//   absl::StatusOr<std::vector<float>> logits = runtime.Output();
#ifndef MAPLEX_AGENT_RUNTIME_RUNTIME_H_
#define MAPLEX_AGENT_RUNTIME_RUNTIME_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/runtime/nb201_network.h"
#include "core/arch/architecture_space.h"
#include "core/arch/nb201_space.h"

namespace maplex::agent {

// A Runtime is used from one thread at a time; it may start worker threads of its own.
class Runtime {
 public:
  virtual ~Runtime() = default;

  // Short stable name stored with every measurement: "eigen", "onednn", "command:<prog>".
  virtual std::string name() const = 0;

  // Builds everything needed to run the network of `arch` (any registered space's
  // architecture) on `batch` images with `threads` worker threads: weights, buffers,
  // kernels. May be called again to switch to another architecture or configuration.
  // InvalidArgument for batch or threads < 1, and for an architecture of a space the
  // runtime cannot build (the message names the space); other errors if the backend
  // fails. Preparation time is never part of a measurement.
  virtual absl::Status Prepare(const core::Architecture& arch, int batch, int threads) = 0;

  // NB201 shorthand: Prepare(the architecture of `cell`). Subclasses that override
  // Prepare bring it into scope with `using Runtime::Prepare;`.
  absl::Status Prepare(const Nb201Cell& cell, int batch, int threads) {
    return Prepare(core::Nb201Space::Get().FromCell(cell), batch, threads);
  }

  // One inference over the prepared batch. FailedPrecondition before a successful
  // Prepare. Returns the latency in milliseconds when the runtime measures it itself
  // (CommandRuntime: the external program's own figure), nullopt when the caller is to
  // time the call.
  virtual absl::StatusOr<std::optional<double>> Run() = 0;

  // Whether Run does all its work on the calling thread when prepared with `threads`
  // threads, so that the calling thread's CPU time is the run's compute time (the
  // measurement protocol then times it with ThreadCpuClock, immune to preemption). false
  // unless a runtime knows better: an external program or a worker pool would show no CPU
  // time on the calling thread.
  virtual bool RunsOnCallingThread(int threads) const {
    (void)threads;
    return false;
  }

  // Logits of the last Run, [batch][classes] row-major (10 classes for NB201, 100 for
  // FBNet). FailedPrecondition before a Run; Unimplemented for runtimes whose output is
  // not visible to the agent.
  virtual absl::StatusOr<std::vector<float>> Output() const = 0;
};

// The check every Runtime::Prepare starts with: InvalidArgument unless batch and threads
// are at least 1.
inline absl::Status ValidateRuntimeConfig(int batch, int threads) {
  if (batch >= 1 && threads >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError("batch and threads must be at least 1");
}

// The error a runtime returns for an architecture of a space it cannot build.
inline absl::Status UnsupportedSpaceError(std::string_view runtime,
                                          const core::Architecture& arch) {
  return absl::InvalidArgumentError(absl::StrCat(
      "runtime ", std::string(runtime), " cannot build architectures of space \"",
      std::string(arch.space() == nullptr ? std::string_view("(none)") : arch.space()->name()),
      "\""));
}

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_RUNTIME_H_

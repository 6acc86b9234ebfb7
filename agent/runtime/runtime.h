// Runtime: the seam between the measurement protocol and whatever executes a network.
// Built in: "eigen" (EigenRuntime) and "onednn" (OneDnnRuntime) execute the full NB201
// network of nb201_network.h on the CPU; "command" (CommandRuntime) drives an external
// program, e.g. a vendor runtime on an accelerator.
//
//   EigenRuntime runtime;
//   if (absl::Status s = runtime.Prepare(cell, /*batch=*/1, /*threads=*/2); !s.ok()) ...
//   for (int i = 0; i < 10; ++i) runtime.Run();
//   absl::StatusOr<std::vector<float>> logits = runtime.Output();
#ifndef MAPLEX_AGENT_RUNTIME_RUNTIME_H_
#define MAPLEX_AGENT_RUNTIME_RUNTIME_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/runtime/nb201_network.h"

namespace maplex::agent {

// A Runtime is used from one thread at a time; it may start worker threads of its own.
class Runtime {
 public:
  virtual ~Runtime() = default;

  // Short stable name stored with every measurement: "eigen", "onednn", "command:<prog>".
  virtual std::string name() const = 0;

  // Builds everything needed to run the NB201 network with `cell` on `batch` images with
  // `threads` worker threads: weights, buffers, kernels. May be called again to switch to
  // another cell or configuration. InvalidArgument for batch or threads < 1; other
  // errors if the backend fails. Preparation time is never part of a measurement.
  virtual absl::Status Prepare(const Nb201Cell& cell, int batch, int threads) = 0;

  // One inference over the prepared batch. FailedPrecondition before a successful
  // Prepare. Returns the latency in milliseconds when the runtime measures it itself
  // (CommandRuntime: the external program's own figure), nullopt when the caller is to
  // time the call.
  virtual absl::StatusOr<std::optional<double>> Run() = 0;

  // Logits of the last Run, [batch][10] row-major. FailedPrecondition before a Run;
  // Unimplemented for runtimes whose output is not visible to the agent.
  virtual absl::StatusOr<std::vector<float>> Output() const = 0;
};

// The check every Runtime::Prepare starts with: InvalidArgument unless batch and threads
// are at least 1.
inline absl::Status ValidateRuntimeConfig(int batch, int threads) {
  if (batch >= 1 && threads >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError("batch and threads must be at least 1");
}

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_RUNTIME_H_

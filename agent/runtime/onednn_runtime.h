// "onednn": the NB201 and FBNet networks on the CPU with Intel oneDNN (libdnnl) primitives, the
// library PyTorch and OpenVINO use on x86; what a tuned framework achieves there.
//
//   OneDnnRuntime runtime;                     // the same weights as EigenRuntime
//   runtime.Prepare(arch, /*batch=*/1, /*threads=*/1);   // an nb201 or fbnet architecture
//   runtime.Run();
//
// Activations are NHWC (oneDNN's JIT convolutions take it directly), weights are
// reordered once to the layout each convolution asks for. Fusions a framework would
// make: BN folded into the conv, the ReLU after a reduction's first conv as a post-op,
// the second and later inputs of a node summed by the conv's sum post-op, the head's
// BN+ReLU in one primitive. ReLU of a node is computed once and shared. FBNet: grouped
// and depthwise convolutions are oneDNN grouped convolutions (GOIHW weights), every ReLU
// is a post-op, a residual sum is the projection's sum post-op onto a copy of the input. Threads:
// Debian's libdnnl uses OpenMP; `threads` is set with omp_set_num_threads before primitives are
// created and before every run. oneDNN's C++ API throws; this class catches at its
// boundary and returns absl::Status.
#ifndef MAPLEX_AGENT_RUNTIME_ONEDNN_RUNTIME_H_
#define MAPLEX_AGENT_RUNTIME_ONEDNN_RUNTIME_H_

#include <cstdint>
#include <memory>

#include "agent/runtime/fbnet_network.h"
#include "agent/runtime/runtime.h"

namespace maplex::agent {

class OneDnnRuntime : public Runtime {
 public:
  explicit OneDnnRuntime(uint64_t seed = kDefaultNb201Seed);
  ~OneDnnRuntime() override;

  std::string name() const override { return "onednn"; }
  using Runtime::Prepare;
  // InvalidArgument for a space other than nb201 and fbnet.
  absl::Status Prepare(const core::Architecture& arch, int batch, int threads) override;
  absl::StatusOr<std::optional<double>> Run() override;
  // One thread: OpenMP runs a one-thread region on the calling thread.
  bool RunsOnCallingThread(int threads) const override { return threads == 1; }
  absl::StatusOr<std::vector<float>> Output() const override;

 private:
  struct Plan;
  uint64_t seed_;
  std::unique_ptr<Plan> plan_;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_ONEDNN_RUNTIME_H_

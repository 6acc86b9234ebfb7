// "eigen": the NB201 and FBNet networks on the CPU with Eigen, built into the agent so that every
// device can be measured without installing anything.
//
//   EigenRuntime runtime;                      // weights from kDefaultNb201Seed
//   runtime.Prepare(arch, /*batch=*/1, /*threads=*/1);   // an nb201 or fbnet architecture
//   runtime.Run();
//
// Layout NHWC, so a convolution is a GEMM: the input patches (im2col; a 1x1 stride-1
// convolution needs none) times the weights reshaped to [k*k*C_in][C_out]. It runs in
// blocks of output rows whose patches fit in L2, so patches are gathered and consumed
// while still in cache. In a cell, the convolutions reading the same node with the same
// kernel size run as one GEMM over their concatenated output channels (patches gathered
// once, a wider GEMM); ReLU of a node is computed once. Threads: OpenMP over the row
// blocks and the pooling loops, `threads` of them; each block's GEMM is single-threaded.
// FBNet: a grouped 1x1 convolution is one GEMM per group on strided channel slices (no
// block-diagonal padding, so grouping saves what it saves on a device); the depthwise
// convolution is a direct NHWC loop (a tap's weights and a pixel's channels are both
// contiguous) with its ReLU fused, threaded over output rows; a residual block's
// projection accumulates onto a copy of its input.
#ifndef MAPLEX_AGENT_RUNTIME_EIGEN_RUNTIME_H_
#define MAPLEX_AGENT_RUNTIME_EIGEN_RUNTIME_H_

#include <cstdint>
#include <memory>

#include "agent/runtime/fbnet_network.h"
#include "agent/runtime/runtime.h"

namespace maplex::agent {

class EigenRuntime : public Runtime {
 public:
  explicit EigenRuntime(uint64_t seed = kDefaultNb201Seed);
  ~EigenRuntime() override;

  std::string name() const override { return "eigen"; }
  using Runtime::Prepare;
  // InvalidArgument for a space other than nb201 and fbnet.
  absl::Status Prepare(const core::Architecture& arch, int batch, int threads) override;
  absl::StatusOr<std::optional<double>> Run() override;
  // One thread: OpenMP runs a one-thread region on the calling thread.
  bool RunsOnCallingThread(int threads) const override { return threads == 1; }
  absl::StatusOr<std::vector<float>> Output() const override;

 private:
  struct Plan;
  struct FbnetPlan;
  void PrepareNb201(const Nb201Cell& cell, int batch, int threads);
  void PrepareFbnet(const core::Architecture& arch, int batch, int threads);

  uint64_t seed_;
  std::unique_ptr<Plan> plan_;             // NB201, or
  std::unique_ptr<FbnetPlan> fbnet_plan_;  // FBNet; at most one is set
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_EIGEN_RUNTIME_H_

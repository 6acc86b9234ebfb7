// "eigen": the NB201 network on the CPU with Eigen, built into the agent so that every
// device can be measured without installing anything.
//
//   EigenRuntime runtime;                      // weights from kDefaultNb201Seed
//   runtime.Prepare(cell, /*batch=*/1, /*threads=*/1);
//   runtime.Run();
//
// Layout NHWC, so a convolution is a GEMM: the input patches (im2col; a 1x1 stride-1
// convolution needs none) times the weights reshaped to [k*k*C_in][C_out]. It runs in
// blocks of output rows whose patches fit in L2, so patches are gathered and consumed
// while still in cache. In a cell, the convolutions reading the same node with the same
// kernel size run as one GEMM over their concatenated output channels (patches gathered
// once, a wider GEMM); ReLU of a node is computed once. Threads: OpenMP over the row
// blocks and the pooling loops, `threads` of them; each block's GEMM is single-threaded.
#ifndef MAPLEX_AGENT_RUNTIME_EIGEN_RUNTIME_H_
#define MAPLEX_AGENT_RUNTIME_EIGEN_RUNTIME_H_

#include <cstdint>
#include <memory>

#include "agent/runtime/runtime.h"

namespace maplex::agent {

class EigenRuntime : public Runtime {
 public:
  explicit EigenRuntime(uint64_t seed = kDefaultNb201Seed);
  ~EigenRuntime() override;

  std::string name() const override { return "eigen"; }
  absl::Status Prepare(const Nb201Cell& cell, int batch, int threads) override;
  absl::StatusOr<std::optional<double>> Run() override;
  absl::StatusOr<std::vector<float>> Output() const override;

 private:
  struct Plan;
  uint64_t seed_;
  std::unique_ptr<Plan> plan_;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_EIGEN_RUNTIME_H_

// "eigen": the NB201 network on the CPU with Eigen, built into the agent so that every
// device can be measured without installing anything.
//
//   EigenRuntime runtime;                      // weights from kDefaultNb201Seed
//   runtime.Prepare(cell, /*batch=*/1, /*threads=*/1);
//   runtime.Run();
//
// Layout NHWC, so a convolution is one GEMM: the input patches (im2col; a 1x1 stride-1
// convolution needs none) times the weights reshaped to [k*k*C_in][C_out]. Sums of cell
// edges accumulate straight into the node (C += A*B), and ReLU of a node is computed
// once however many convolutions read it. Threads: Eigen's GEMM and the im2col/pooling
// loops run on OpenMP with `threads` threads.
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

// An architecture search space: a finite set of architectures with an official index,
// a string form, and the features a latency model reads. The model sees only this
// interface, so another space (FBNet, ...) can be added without touching core/model.
//
//   const ArchitectureSpace& space = Nb201Space::Get();
//   absl::StatusOr<int32_t> index = space.IndexOf("|nor_conv_3x3~0|+|...|");
//   std::vector<double> f(space.feature_dim());
//   space.Features(*index, absl::MakeSpan(f));
#ifndef MAPLEX_CORE_ARCH_ARCHITECTURE_SPACE_H_
#define MAPLEX_CORE_ARCH_ARCHITECTURE_SPACE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace maplex::core {

// Analytic cost of one whole network (not only its cell).
struct NetworkCost {
  // Multiply-accumulates of the convolution and linear layers. FLOPs = 2 * macs.
  // Elementwise work (BN, ReLU, pooling, node sums) is not counted.
  int64_t macs = 0;
  int64_t parameters = 0;  // weights, biases and BN affine parameters
  // Elements of every feature map a forward pass writes (batch 1); bytes = 4x in fp32.
  int64_t activation_elements = 0;
};

class ArchitectureSpace {
 public:
  virtual ~ArchitectureSpace() = default;

  virtual std::string_view name() const = 0;
  // Number of architectures; valid indices are [0, size()).
  virtual int32_t size() const = 0;

  // The official index of `arch`; InvalidArgument naming the fault for a malformed string.
  virtual absl::StatusOr<int32_t> IndexOf(std::string_view arch) const = 0;
  // The canonical string of `index`; InvalidArgument when out of range.
  virtual absl::StatusOr<std::string> ArchString(int32_t index) const = 0;

  // False when the architecture's output does not depend on its input (its latency is
  // then often an artefact of the runtime); evaluation reports those apart.
  virtual bool IsOutputConnected(int32_t index) const = 0;

  // Fixed-length numeric description used by models; `out.size()` must be feature_dim().
  virtual int feature_dim() const = 0;
  virtual void Features(int32_t index, absl::Span<double> out) const = 0;

  virtual NetworkCost Cost(int32_t index) const = 0;
  // Operators a runtime dispatches for the architecture (each pays a fixed cost that can
  // dominate small batch-1 workloads); index must be valid.
  virtual int PrimitiveCount(int32_t index) const = 0;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_ARCH_ARCHITECTURE_SPACE_H_

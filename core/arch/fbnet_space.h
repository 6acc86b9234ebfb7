// FBNet (Wu et al., CVPR 2019) in the CIFAR-100 setting of HW-NAS-Bench and HELP: 22 searchable
// layers, each one of 9 blocks, so 9^22 ~ 1e21 architectures; nothing here enumerates them.
// The canonical string is the 22 block names joined by '-' ("k5_e6-skip-k3_e1_g2-...");
// block op codes 0..8 are k3_e1 k3_e1_g2 k3_e3 k3_e6 k5_e1 k5_e1_g2 k5_e3 k5_e6 skip.
//
// Macro-architecture (data/README.md): input 3x32x32; stem 3x3 conv 3->16, BN, ReLU; 7 stages
// of 1, 4, 4, 4, 4, 4, 1 layers with 16, 24, 32, 64, 112, 184, 352 output channels, the
// stage's first layer with stride 1, 1, 2, 2, 1, 2, 1; head 1x1 conv to 1504, BN, ReLU, global
// average pool, fully connected to 100 classes. Block kK_eE[_gG]: 1x1 conv (G groups) C_in ->
// E*C_in, BN, ReLU; KxK depthwise conv with the layer's stride, BN, ReLU; 1x1 conv (G groups)
// to C_out, BN; plus the input when stride is 1 and C_in == C_out. skip: identity when the
// shape is kept, else a 1x1 conv with the layer's stride, and BN. Convolutions have no bias.
//
//   const FbnetSpace& space = FbnetSpace::Get();
//   absl::StatusOr<Architecture> a = space.Parse(text);
#ifndef MAPLEX_CORE_ARCH_FBNET_SPACE_H_
#define MAPLEX_CORE_ARCH_FBNET_SPACE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/arch/architecture_space.h"

namespace maplex::core {

inline constexpr int kFbnetLayerCount = 22;
inline constexpr int kFbnetBlockCount = 9;
inline constexpr int kFbnetSkip = 8;
// The fixed parts of the macro-architecture (data/README.md): stem channels, head
// channels, classes.
inline constexpr int kFbnetStemChannels = 16;
inline constexpr int kFbnetHeadChannels = 1504;
inline constexpr int kFbnetClasses = 100;

// Kernel, expansion and groups of a block op code (all 0 for kFbnetSkip).
struct FbnetBlockShape {
  int kernel = 0;
  int expansion = 0;
  int groups = 0;
};

// One searchable layer's place in the macro-architecture.
struct FbnetLayer {
  int c_in = 0;
  int c_out = 0;
  int stride = 1;
  int side_in = 0;  // spatial side of the layer's input (square maps)
};

class FbnetSpace final : public ArchitectureSpace {
 public:
  static const FbnetSpace& Get();

  // "k3_e1", ..., "skip" for op codes 0..8.
  static const char* BlockName(int block);
  // The shape of op code `block`; all 0 for skip and for a code outside 0..8.
  static FbnetBlockShape BlockShape(int block);
  static FbnetLayer Layer(int layer);

  std::string_view name() const override { return "fbnet"; }
  int positions() const override { return kFbnetLayerCount; }
  int options(int) const override { return kFbnetBlockCount; }
  std::string_view OptionName(int position, int option) const override;
  // InvalidArgument naming the layer (1-based) and the token for an empty token, an unknown
  // block, a wrong separator or a wrong layer count.
  absl::StatusOr<Architecture> Parse(std::string_view text) const override;
  std::string Format(const Architecture& a) const override;
  // Every block passes its input on: always true.
  bool IsOutputConnected(const Architecture& a) const override;
  NetworkCost Cost(const Architecture& a) const override;
  // Convolutions and residual adds after BN/ReLU fusion: 3 per block (+1 add when it keeps
  // the shape), 0 per identity skip, 1 per projecting skip; plus stem conv, head conv, pool
  // and linear (4).
  int PrimitiveCount(const Architecture& a) const override;

 private:
  FbnetSpace() = default;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_ARCH_FBNET_SPACE_H_

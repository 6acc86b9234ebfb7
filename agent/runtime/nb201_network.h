// The NAS-Bench-201 network both built-in runtimes execute, with deterministic weights.
//
//   absl::StatusOr<Nb201Cell> cell = core::Nb201Space::CellFromOpCodes({3, 3, 3, 3, 3, 3});
//   Nb201Network net = BuildNb201Network(*cell, kDefaultNb201Seed);
//   std::vector<float> images = MakeNb201Input(/*batch=*/2, kDefaultNb201Seed);
//
// Structure (Dong & Yang, NAS-Bench-201, ICLR 2020; the reference PyTorch code's
// TinyNetwork / InferCell / ResNetBasicblock):
//   stem        Conv3x3(3 -> 16) + BN                                     on 32x32x3
//   stage 0..2  5 cells at 16, 32, 64 channels (32x32, 16x16, 8x8)
//   reduction   between stages: ResNet basic block, stride 2:
//                 ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, + AvgPool2x2(s2)-Conv1x1 shortcut
//   head        BN, ReLU, global average pool, Linear(64 -> 10)
// In a cell node j = sum over i < j of op_ij(node_i), node 0 is the cell input and node 3
// its output; none = zero, skip_connect = identity, nor_conv_kxk = ReLU-Conv-BN (padding
// keeps the size), avg_pool_3x3 = stride 1, padding 1, padding not counted.
//
// Weights are inference-form: every BN that follows a convolution is folded into that
// convolution's weights and bias (w' = w * gamma / sqrt(var + eps), b' = beta - mean *
// gamma / sqrt(var + eps)); the head's BN, which follows no convolution, is kept as BN.
// Weight values are uniform in +-sqrt(3 / fan_in) (unit variance through a conv), BN
// statistics near identity; all drawn from a SplitMix64 stream in a fixed layer order,
// so a seed fixes the network bit for bit on every machine.
#ifndef MAPLEX_AGENT_RUNTIME_NB201_NETWORK_H_
#define MAPLEX_AGENT_RUNTIME_NB201_NETWORK_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/arch/nb201_space.h"

namespace maplex::agent {

// The cell and its ops are core/arch's (edge order (1<-0) (2<-0) (2<-1) (3<-0) (3<-1) (3<-2)).
using core::Nb201Cell;
using core::Nb201Op;

// The ops that convolve, and so read the ReLU of their input node.
inline bool IsNb201Conv(Nb201Op op) {
  return op == Nb201Op::kNorConv1x1 || op == Nb201Op::kNorConv3x3;
}
// True if a convolution edge reads node `node` (0..2), i.e. its ReLU is needed.
bool Nb201NodeFeedsConv(const Nb201Cell& cell, int node);

inline constexpr uint64_t kDefaultNb201Seed = 201;
inline constexpr int kNb201ImageSize = 32;
inline constexpr int kNb201InputChannels = 3;
inline constexpr int kNb201Classes = 10;
inline constexpr int kNb201CellsPerStage = 5;
inline constexpr std::array<int, 3> kNb201StageChannels = {16, 32, 64};

// A convolution with its BN folded in. Square kernel, padding (kernel - 1) / 2. With
// `groups` > 1, input and output channels split into that many groups, output group g
// reading input group g only (groups == in_channels == out_channels: depthwise).
struct FoldedConv {
  int in_channels = 0;
  int out_channels = 0;
  int kernel = 1;
  int stride = 1;
  int groups = 1;
  std::vector<float> weights;  // [out][in / groups][kh][kw] (OIHW; GOIHW for groups > 1)
  std::vector<float> bias;     // [out]
};

struct BatchNormParams {
  std::vector<float> gamma, beta, mean, variance;
  float epsilon = 1e-5f;
};

struct Nb201CellWeights {
  // Present exactly for the edges whose op is a convolution.
  std::array<std::optional<FoldedConv>, 6> convs;
};

struct Nb201ReductionWeights {
  FoldedConv conv_a;    // 3x3, stride 2
  FoldedConv conv_b;    // 3x3, stride 1
  FoldedConv shortcut;  // 1x1 after AvgPool2x2; no BN in the reference, so the bias is 0
};

struct Nb201Network {
  Nb201Cell cell;
  FoldedConv stem;
  std::vector<Nb201CellWeights> cells;            // 15: stage 0 first
  std::vector<Nb201ReductionWeights> reductions;  // 2: after stage 0 and stage 1
  BatchNormParams head_bn;                        // 64 channels
  std::vector<float> classifier_weights;          // [10][64]
  std::vector<float> classifier_bias;             // [10]
};

// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, identical everywhere. The stream every
// built-in network draws its weights from.
class WeightStream {
 public:
  explicit WeightStream(uint64_t seed) : state_(seed) {}
  // Uniform in [lo, hi).
  float Uniform(float lo, float hi) {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const double unit = (z >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
    return static_cast<float>(lo + (hi - lo) * unit);
  }

 private:
  uint64_t state_;
};

// A convolution drawn from `stream`: weights uniform in +-sqrt(3 / fan_in), then (with_bn)
// BN statistics near identity folded in; without BN the bias is 0.
FoldedConv MakeFoldedConv(int in, int out, int kernel, int stride, int groups, bool with_bn,
                          WeightStream& stream);

// The network for `cell` with weights drawn from `seed`.
Nb201Network BuildNb201Network(const Nb201Cell& cell, uint64_t seed);

// `batch` images, NCHW [batch][3][32][32], values uniform in [-1, 1) from `seed`.
std::vector<float> MakeNb201Input(int batch, uint64_t seed);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_NB201_NETWORK_H_

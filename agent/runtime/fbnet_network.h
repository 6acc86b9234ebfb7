// The FBNet network (core/arch/fbnet_space.h) both built-in runtimes execute, with
// deterministic weights, for any architecture of the space.
//
//   absl::StatusOr<core::Architecture> a = core::FbnetSpace::Get().Parse("k5_e6-skip-...");
//   FbnetNetwork net = BuildFbnetNetwork(*a, kDefaultNb201Seed);
//   std::vector<float> images = MakeNb201Input(/*batch=*/2, kDefaultNb201Seed);  // 3x32x32
//
// Macro-architecture (data/README.md, FBNet v1 CIFAR-100 setting of HW-NAS-Bench):
//   stem     Conv3x3(3 -> 16, stride 1) + BN + ReLU                      on 32x32x3
//   layers   22 searchable layers in 7 stages (FbnetSpace::Layer gives C_in, C_out, stride)
//   head     Conv1x1(352 -> 1504) + BN + ReLU, global average pool, Linear(1504 -> 100)
// Block kK_eE[_gG]: Conv1x1(C_in -> E*C_in, G groups) + BN + ReLU; depthwise ConvKxK
// (the layer's stride) + BN + ReLU; Conv1x1(E*C_in -> C_out, G groups) + BN; plus the
// block's input when stride is 1 and C_in == C_out. skip: identity when the shape is kept,
// else Conv1x1(C_in -> C_out, the layer's stride) + BN.
//
// Weights are inference-form and drawn as the NB201 network's are (nb201_network.h): every
// BN folded into its convolution, values uniform in +-sqrt(3 / fan_in), from one SplitMix64
// stream in layer order, so a seed fixes the network bit for bit on every machine.
#ifndef MAPLEX_AGENT_RUNTIME_FBNET_NETWORK_H_
#define MAPLEX_AGENT_RUNTIME_FBNET_NETWORK_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "agent/runtime/nb201_network.h"
#include "core/arch/architecture_space.h"
#include "core/arch/fbnet_space.h"

namespace maplex::agent {

// The macro-architecture's fixed sizes and block shapes are the space's (one definition,
// so the network built here is the one core::FbnetSpace::Cost counts).
using core::FbnetBlockShape;
using core::kFbnetClasses;
using core::kFbnetHeadChannels;
using core::kFbnetStemChannels;

struct FbnetLayerWeights {
  int block = core::kFbnetSkip;
  core::FbnetLayer layer;
  // stride 1 and C_in == C_out: the block adds its input (skip: it is the identity).
  bool keeps_shape = false;
  // kK_eE[_gG]: expand (1x1, groups), depthwise (KxK, stride), project (1x1, groups).
  // skip that changes the shape: project only (1x1, stride). Identity skip: none.
  std::optional<FoldedConv> expand, depthwise, project;
};

struct FbnetNetwork {
  core::Architecture arch;
  FoldedConv stem;                        // followed by ReLU
  std::vector<FbnetLayerWeights> layers;  // 22
  FoldedConv head;                        // 1x1 352 -> 1504, followed by ReLU
  std::vector<float> classifier_weights;  // [100][1504]
  std::vector<float> classifier_bias;     // [100]
};

// The network for `arch`, which must belong to core::FbnetSpace, with weights from `seed`.
FbnetNetwork BuildFbnetNetwork(const core::Architecture& arch, uint64_t seed);

// Multiply-accumulates of one batch-1 forward pass as built (convolutions and the linear
// layer), to check the network against core::FbnetSpace::Cost.
int64_t FbnetNetworkMacs(const FbnetNetwork& net);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_RUNTIME_FBNET_NETWORK_H_

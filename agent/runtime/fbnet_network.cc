#include "agent/runtime/fbnet_network.h"

#include <cmath>

namespace maplex::agent {

FbnetNetwork BuildFbnetNetwork(const core::Architecture& arch, uint64_t seed) {
  WeightStream stream(seed);
  FbnetNetwork net;
  net.arch = arch;
  net.stem = MakeFoldedConv(kNb201InputChannels, kFbnetStemChannels, 3, 1, 1, true, stream);
  for (int l = 0; l < core::kFbnetLayerCount; ++l) {
    FbnetLayerWeights layer;
    layer.block = arch.choice(l);
    layer.layer = core::FbnetSpace::Layer(l);
    const core::FbnetLayer& shape = layer.layer;
    layer.keeps_shape = shape.stride == 1 && shape.c_in == shape.c_out;
    if (layer.block == core::kFbnetSkip) {
      if (!layer.keeps_shape) {
        layer.project = MakeFoldedConv(shape.c_in, shape.c_out, 1, shape.stride, 1, true, stream);
      }
    } else {
      const FbnetBlockShape block = core::FbnetSpace::BlockShape(layer.block);
      const int mid = block.expansion * shape.c_in;
      layer.expand = MakeFoldedConv(shape.c_in, mid, 1, 1, block.groups, true, stream);
      layer.depthwise = MakeFoldedConv(mid, mid, block.kernel, shape.stride, mid, true, stream);
      layer.project = MakeFoldedConv(mid, shape.c_out, 1, 1, block.groups, true, stream);
    }
    net.layers.push_back(std::move(layer));
  }
  const int last = core::FbnetSpace::Layer(core::kFbnetLayerCount - 1).c_out;
  net.head = MakeFoldedConv(last, kFbnetHeadChannels, 1, 1, 1, true, stream);
  const float bound = std::sqrt(3.0f / kFbnetHeadChannels);
  net.classifier_weights.resize(static_cast<size_t>(kFbnetClasses) * kFbnetHeadChannels);
  for (float& w : net.classifier_weights) w = stream.Uniform(-bound, bound);
  for (int i = 0; i < kFbnetClasses; ++i) {
    net.classifier_bias.push_back(stream.Uniform(-0.1f, 0.1f));
  }
  return net;
}

namespace {

// MACs of `conv` on a square input of side `side_in`; returns the output side in `side_out`.
int64_t ConvMacs(const FoldedConv& conv, int side_in, int* side_out) {
  const int pad = (conv.kernel - 1) / 2;
  *side_out = (side_in + 2 * pad - conv.kernel) / conv.stride + 1;
  return int64_t{*side_out} * *side_out * conv.out_channels * (conv.in_channels / conv.groups) *
         conv.kernel * conv.kernel;
}

}  // namespace

int64_t FbnetNetworkMacs(const FbnetNetwork& net) {
  int side = kNb201ImageSize;
  int64_t macs = ConvMacs(net.stem, side, &side);
  for (const FbnetLayerWeights& layer : net.layers) {
    int in_side = side;
    for (const std::optional<FoldedConv>* conv :
         {&layer.expand, &layer.depthwise, &layer.project}) {
      if (conv->has_value()) macs += ConvMacs(**conv, in_side, &in_side);
    }
    side = in_side;
  }
  macs += ConvMacs(net.head, side, &side);
  return macs + int64_t{kFbnetClasses} * kFbnetHeadChannels;
}

}  // namespace maplex::agent

#include "agent/runtime/nb201_network.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

BatchNormParams MakeBatchNorm(int channels, WeightStream& stream) {
  BatchNormParams bn;
  for (int c = 0; c < channels; ++c) {
    bn.gamma.push_back(stream.Uniform(0.5f, 1.5f));
    bn.beta.push_back(stream.Uniform(-0.1f, 0.1f));
    bn.mean.push_back(stream.Uniform(-0.1f, 0.1f));
    bn.variance.push_back(stream.Uniform(0.5f, 1.5f));
  }
  return bn;
}

}  // namespace

FoldedConv MakeFoldedConv(int in, int out, int kernel, int stride, int groups, bool with_bn,
                          WeightStream& stream) {
  FoldedConv conv;
  conv.in_channels = in;
  conv.out_channels = out;
  conv.kernel = kernel;
  conv.stride = stride;
  conv.groups = groups;
  const int fan_in = in / groups * kernel * kernel;
  const float bound = std::sqrt(3.0f / fan_in);
  conv.weights.resize(static_cast<size_t>(out) * fan_in);
  for (float& w : conv.weights) w = stream.Uniform(-bound, bound);
  conv.bias.assign(out, 0.0f);
  if (with_bn) {
    const BatchNormParams bn = MakeBatchNorm(out, stream);
    const size_t per_output = conv.weights.size() / out;
    for (int o = 0; o < out; ++o) {
      const float scale = bn.gamma[o] / std::sqrt(bn.variance[o] + bn.epsilon);
      for (size_t i = 0; i < per_output; ++i) conv.weights[o * per_output + i] *= scale;
      conv.bias[o] = bn.beta[o] - bn.mean[o] * scale;
    }
  }
  return conv;
}

namespace {

FoldedConv MakeConv(int in, int out, int kernel, int stride, bool with_bn, WeightStream& stream) {
  return MakeFoldedConv(in, out, kernel, stride, /*groups=*/1, with_bn, stream);
}

}  // namespace

bool Nb201NodeFeedsConv(const Nb201Cell& cell, int node) {
  for (int to = node + 1; to <= 3; ++to) {
    if (IsNb201Conv(core::Nb201EdgeOp(cell, to, node))) return true;
  }
  return false;
}

Nb201Network BuildNb201Network(const Nb201Cell& cell, uint64_t seed) {
  WeightStream stream(seed);
  Nb201Network net;
  net.cell = cell;
  net.stem = MakeConv(kNb201InputChannels, kNb201StageChannels[0], 3, 1, true, stream);
  for (int stage = 0; stage < 3; ++stage) {
    const int channels = kNb201StageChannels[stage];
    if (stage > 0) {
      const int in = kNb201StageChannels[stage - 1];
      Nb201ReductionWeights reduction;
      reduction.conv_a = MakeConv(in, channels, 3, 2, true, stream);
      reduction.conv_b = MakeConv(channels, channels, 3, 1, true, stream);
      reduction.shortcut = MakeConv(in, channels, 1, 1, false, stream);
      net.reductions.push_back(std::move(reduction));
    }
    for (int c = 0; c < kNb201CellsPerStage; ++c) {
      Nb201CellWeights weights;
      for (int e = 0; e < 6; ++e) {
        if (IsNb201Conv(cell[e])) {
          const int kernel = cell[e] == Nb201Op::kNorConv3x3 ? 3 : 1;
          weights.convs[e] = MakeConv(channels, channels, kernel, 1, true, stream);
        }
      }
      net.cells.push_back(std::move(weights));
    }
  }
  const int last = kNb201StageChannels[2];
  net.head_bn = MakeBatchNorm(last, stream);
  const float bound = std::sqrt(3.0f / last);
  for (int i = 0; i < kNb201Classes * last; ++i) {
    net.classifier_weights.push_back(stream.Uniform(-bound, bound));
  }
  for (int i = 0; i < kNb201Classes; ++i)
    net.classifier_bias.push_back(stream.Uniform(-0.1f, 0.1f));
  return net;
}

std::vector<float> MakeNb201Input(int batch, uint64_t seed) {
  // A stream apart from the weights' so that the input does not echo the stem weights.
  WeightStream stream(seed ^ 0x5eed1a9e5eed1a9eull);
  std::vector<float> input(static_cast<size_t>(batch) * kNb201InputChannels * kNb201ImageSize *
                           kNb201ImageSize);
  for (float& x : input) x = stream.Uniform(-1.0f, 1.0f);
  return input;
}

}  // namespace maplex::agent

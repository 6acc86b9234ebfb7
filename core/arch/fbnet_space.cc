#include "core/arch/fbnet_space.h"

#include <array>
#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::core {
namespace {

struct Block {
  const char* name;
  FbnetBlockShape shape;
};
constexpr Block kBlocks[kFbnetBlockCount] = {
    {"k3_e1", {3, 1, 1}}, {"k3_e1_g2", {3, 1, 2}}, {"k3_e3", {3, 3, 1}},
    {"k3_e6", {3, 6, 1}}, {"k5_e1", {5, 1, 1}},    {"k5_e1_g2", {5, 1, 2}},
    {"k5_e3", {5, 3, 1}}, {"k5_e6", {5, 6, 1}},    {"skip", {0, 0, 0}},
};

constexpr int kStageLayers[7] = {1, 4, 4, 4, 4, 4, 1};
constexpr int kStageChannels[7] = {16, 24, 32, 64, 112, 184, 352};
constexpr int kStageStride[7] = {1, 1, 2, 2, 1, 2, 1};

std::array<FbnetLayer, kFbnetLayerCount> BuildLayers() {
  std::array<FbnetLayer, kFbnetLayerCount> layers{};
  int c = kFbnetStemChannels, side = 32, l = 0;
  for (int s = 0; s < 7; ++s) {
    for (int i = 0; i < kStageLayers[s]; ++i, ++l) {
      const int stride = i == 0 ? kStageStride[s] : 1;
      layers[l] = {c, kStageChannels[s], stride, side};
      c = kStageChannels[s];
      side /= stride;
    }
  }
  return layers;
}

const std::array<FbnetLayer, kFbnetLayerCount>& Layers() {
  static const std::array<FbnetLayer, kFbnetLayerCount> layers = BuildLayers();
  return layers;
}

void AddLayer(const FbnetLayer& l, int block, NetworkCost* cost) {
  const int64_t side_out = l.side_in / l.stride;
  const int64_t in_pixels = int64_t{l.side_in} * l.side_in;
  const int64_t out_pixels = side_out * side_out;
  const bool keeps_shape = l.stride == 1 && l.c_in == l.c_out;
  if (block == kFbnetSkip) {
    if (keeps_shape) return;  // identity
    cost->macs += out_pixels * l.c_in * l.c_out;
    cost->parameters += int64_t{l.c_in} * l.c_out + 2 * l.c_out;
    cost->activation_elements += 2 * l.c_out * out_pixels;  // conv, BN
    return;
  }
  const FbnetBlockShape& b = kBlocks[block].shape;
  const int64_t mid = int64_t{b.expansion} * l.c_in;
  // Expand: 1x1 conv in groups, BN, ReLU at the input resolution.
  cost->macs += in_pixels * (l.c_in / b.groups) * mid;
  cost->parameters += (l.c_in / b.groups) * mid + 2 * mid;
  cost->activation_elements += 3 * mid * in_pixels;
  // Depthwise KxK with the layer's stride, BN, ReLU.
  const int64_t k2 = int64_t{b.kernel} * b.kernel;
  cost->macs += out_pixels * mid * k2;
  cost->parameters += mid * k2 + 2 * mid;
  cost->activation_elements += 3 * mid * out_pixels;
  // Project: 1x1 conv in groups, BN.
  cost->macs += out_pixels * (mid / b.groups) * l.c_out;
  cost->parameters += (mid / b.groups) * l.c_out + 2 * l.c_out;
  cost->activation_elements += 2 * l.c_out * out_pixels;
  if (keeps_shape) cost->activation_elements += l.c_out * out_pixels;  // residual sum
}

}  // namespace

const FbnetSpace& FbnetSpace::Get() {
  static const FbnetSpace* const space = new FbnetSpace();
  return *space;
}

const char* FbnetSpace::BlockName(int block) { return kBlocks[block].name; }

FbnetBlockShape FbnetSpace::BlockShape(int block) {
  return block >= 0 && block < kFbnetBlockCount ? kBlocks[block].shape : FbnetBlockShape();
}
FbnetLayer FbnetSpace::Layer(int layer) { return Layers()[layer]; }

std::string_view FbnetSpace::OptionName(int, int option) const { return kBlocks[option].name; }

absl::StatusOr<Architecture> FbnetSpace::Parse(std::string_view text) const {
  std::array<uint8_t, kFbnetLayerCount> choices{};
  size_t pos = 0;
  auto fault = [&](int layer, std::string_view token, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FBNet architecture: ", std::string(what), " at layer ", layer + 1, " (character ", pos,
        ") \"", std::string(token), "\"; expected ", kFbnetLayerCount,
        " of k3_e1 k3_e1_g2 k3_e3 k3_e6 k5_e1 k5_e1_g2 k5_e3 k5_e6 skip joined by '-'"));
  };
  for (int layer = 0; layer < kFbnetLayerCount; ++layer) {
    if (pos > text.size()) return fault(layer, "", "missing layer");
    size_t end = text.find('-', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view token = text.substr(pos, end - pos);
    if (token.empty()) {
      return fault(layer, token, pos >= text.size() ? "missing layer" : "empty token");
    }
    int block = -1;
    for (int b = 0; b < kFbnetBlockCount; ++b) {
      if (token == kBlocks[b].name) block = b;
    }
    if (block < 0) {
      bool bad_separator = false;
      for (char c : token)
        bad_separator |= !(std::isalnum(static_cast<unsigned char>(c)) || c == '_');
      return fault(layer, token, bad_separator ? "bad separator or character" : "unknown block");
    }
    choices[layer] = static_cast<uint8_t>(block);
    if (end == text.size() && layer + 1 < kFbnetLayerCount) {
      pos = end;
      return fault(layer + 1, "", absl::StrCat("only ", layer + 1, " layers; missing layer"));
    }
    pos = end + 1;
  }
  if (pos <= text.size()) {
    return fault(kFbnetLayerCount, text.substr(pos), "more than 22 layers; extra");
  }
  return MakeArchitecture(choices);
}

std::string FbnetSpace::Format(const Architecture& a) const {
  std::string out;
  for (int l = 0; l < kFbnetLayerCount; ++l) {
    if (l > 0) out += '-';
    out += kBlocks[a.choice(l)].name;
  }
  return out;
}

bool FbnetSpace::IsOutputConnected(const Architecture&) const { return true; }

NetworkCost FbnetSpace::Cost(const Architecture& a) const {
  NetworkCost cost;
  // Stem: 3x3 conv 3 -> 16, BN, ReLU on 32x32.
  cost.macs += int64_t{32} * 32 * kFbnetStemChannels * 3 * 9;
  cost.parameters += 3 * kFbnetStemChannels * 9 + 2 * kFbnetStemChannels;
  cost.activation_elements += 3 * kFbnetStemChannels * 32 * 32;
  for (int l = 0; l < kFbnetLayerCount; ++l) AddLayer(Layers()[l], a.choice(l), &cost);
  // Head at 4x4: 1x1 conv 352 -> 1504, BN, ReLU; global average pool; linear 1504 -> 100.
  const int64_t pixels = 4 * 4;
  const int64_t c_last = kStageChannels[6];
  cost.macs += pixels * c_last * kFbnetHeadChannels + int64_t{kFbnetHeadChannels} * kFbnetClasses;
  cost.parameters +=
      c_last * kFbnetHeadChannels + 2 * kFbnetHeadChannels + int64_t{kFbnetHeadChannels} * kFbnetClasses + kFbnetClasses;
  cost.activation_elements += 3 * kFbnetHeadChannels * pixels + kFbnetHeadChannels + kFbnetClasses;
  return cost;
}

int FbnetSpace::PrimitiveCount(const Architecture& a) const {
  int count = 4;
  for (int l = 0; l < kFbnetLayerCount; ++l) {
    const FbnetLayer& layer = Layers()[l];
    const bool keeps_shape = layer.stride == 1 && layer.c_in == layer.c_out;
    if (a.choice(l) == kFbnetSkip) {
      count += keeps_shape ? 0 : 1;
    } else {
      count += keeps_shape ? 4 : 3;
    }
  }
  return count;
}

}  // namespace maplex::core

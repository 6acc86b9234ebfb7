#include "agent/runtime/eigen_runtime.h"

#include <algorithm>
#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/agent/runtime/runtime_test_util.h"

namespace maplex::agent {
namespace {

// A deliberately naive NCHW forward pass of one image, written from the NB201 definition
// with none of the runtime's layout tricks, to check the runtime against.
struct Image {
  int c = 0, h = 0, w = 0;
  std::vector<float> v;
  Image(int c_, int h_, int w_) : c(c_), h(h_), w(w_), v(size_t(c_) * h_ * w_, 0.0f) {}
  float& at(int ch, int y, int x) { return v[(size_t(ch) * h + y) * w + x]; }
  float at(int ch, int y, int x) const { return v[(size_t(ch) * h + y) * w + x]; }
};

// Grouped when conv.groups > 1: output o reads the inputs of its group only.
Image Conv(const FoldedConv& conv, const Image& in) {
  const int k = conv.kernel, s = conv.stride, pad = (k - 1) / 2;
  const int ig = in.c / conv.groups, og = conv.out_channels / conv.groups;
  Image out(conv.out_channels, (in.h + 2 * pad - k) / s + 1, (in.w + 2 * pad - k) / s + 1);
  for (int o = 0; o < out.c; ++o) {
    const int first_input = o / og * ig;
    for (int y = 0; y < out.h; ++y) {
      for (int x = 0; x < out.w; ++x) {
        double sum = conv.bias[o];
        for (int i = 0; i < ig; ++i) {
          for (int kh = 0; kh < k; ++kh) {
            for (int kw = 0; kw < k; ++kw) {
              const int iy = y * s - pad + kh, ix = x * s - pad + kw;
              if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;
              sum += double(conv.weights[((size_t(o) * ig + i) * k + kh) * k + kw]) *
                     in.at(first_input + i, iy, ix);
            }
          }
        }
        out.at(o, y, x) = static_cast<float>(sum);
      }
    }
  }
  return out;
}

Image Relu(Image in) {
  for (float& v : in.v) v = std::max(v, 0.0f);
  return in;
}

Image AvgPool(const Image& in, int k, int s, int pad) {
  Image out(in.c, (in.h + 2 * pad - k) / s + 1, (in.w + 2 * pad - k) / s + 1);
  for (int ch = 0; ch < in.c; ++ch) {
    for (int y = 0; y < out.h; ++y) {
      for (int x = 0; x < out.w; ++x) {
        double sum = 0;
        int count = 0;  // padding not counted
        for (int iy = y * s - pad; iy < y * s - pad + k; ++iy) {
          for (int ix = x * s - pad; ix < x * s - pad + k; ++ix) {
            if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;
            sum += in.at(ch, iy, ix);
            ++count;
          }
        }
        out.at(ch, y, x) = static_cast<float>(sum / count);
      }
    }
  }
  return out;
}

void Add(Image& into, const Image& other) {
  for (size_t i = 0; i < into.v.size(); ++i) into.v[i] += other.v[i];
}

std::vector<float> ReferenceLogits(const Nb201Cell& cell, uint64_t seed) {
  const Nb201Network net = BuildNb201Network(cell, seed);
  Image x(3, 32, 32);
  x.v = MakeNb201Input(1, seed);
  x = Conv(net.stem, x);
  for (int stage = 0; stage < 3; ++stage) {
    if (stage > 0) {
      const Nb201ReductionWeights& r = net.reductions[stage - 1];
      Image main = Conv(r.conv_b, Relu(Conv(r.conv_a, Relu(x))));
      Add(main, Conv(r.shortcut, AvgPool(x, 2, 2, 0)));
      x = main;
    }
    for (int c = 0; c < 5; ++c) {
      const Nb201CellWeights& weights = net.cells[stage * 5 + c];
      std::vector<Image> nodes = {x};
      for (int to = 1; to <= 3; ++to) {
        Image node(x.c, x.h, x.w);  // zero: what "none" contributes
        for (int from = 0; from < to; ++from) {
          const int edge = core::Nb201EdgeIndex(to, from);
          switch (cell[edge]) {
            case Nb201Op::kNone:
              break;
            case Nb201Op::kSkipConnect:
              Add(node, nodes[from]);
              break;
            case Nb201Op::kNorConv1x1:
            case Nb201Op::kNorConv3x3:
              Add(node, Conv(*weights.convs[edge], Relu(nodes[from])));
              break;
            case Nb201Op::kAvgPool3x3:
              Add(node, AvgPool(nodes[from], 3, 1, 1));
              break;
          }
        }
        nodes.push_back(node);
      }
      x = nodes[3];
    }
  }
  std::vector<double> pooled(x.c, 0.0);
  for (int ch = 0; ch < x.c; ++ch) {
    const BatchNormParams& bn = net.head_bn;
    const double scale = bn.gamma[ch] / std::sqrt(double(bn.variance[ch]) + bn.epsilon);
    for (int p = 0; p < x.h * x.w; ++p) {
      pooled[ch] += std::max(0.0, (x.v[ch * x.h * x.w + p] - bn.mean[ch]) * scale + bn.beta[ch]);
    }
    pooled[ch] /= x.h * x.w;
  }
  std::vector<float> logits(10);
  for (int k = 0; k < 10; ++k) {
    double sum = net.classifier_bias[k];
    for (int ch = 0; ch < x.c; ++ch) sum += net.classifier_weights[k * x.c + ch] * pooled[ch];
    logits[k] = static_cast<float>(sum);
  }
  return logits;
}

std::vector<float> RunEigen(const Nb201Cell& cell, int batch, int threads) {
  EigenRuntime runtime(kDefaultNb201Seed);
  return RunOnce(runtime, cell, batch, threads);
}

TEST(EigenRuntimeTest, MatchesNaiveReference) {
  // Every op, a zero node (node 1 only has "none") and a 1x1 / pool / skip mix.
  for (const std::array<int, 6>& codes :
       {std::array<int, 6>{2, 4, 1, 0, 3, 2}, std::array<int, 6>{0, 1, 0, 0, 0, 3}}) {
    Nb201Cell cell = *core::Nb201Space::CellFromOpCodes(codes);
    std::vector<float> expected = ReferenceLogits(cell, kDefaultNb201Seed);
    std::vector<float> actual = RunEigen(cell, 1, 1);
    ASSERT_EQ(actual.size(), 10u);
    EXPECT_LT(MaxRelativeError(actual, expected), 1e-4)
        << "cell " << codes[0] << codes[1] << codes[2] << codes[3] << codes[4] << codes[5];
  }
}

TEST(EigenRuntimeTest, BatchAndThreadsDoNotChangeTheResult) {
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({3, 1, 4, 2, 0, 3});
  std::vector<float> single = RunEigen(cell, 1, 1);
  std::vector<float> batch = RunEigen(cell, 3, 2);
  ASSERT_EQ(batch.size(), 30u);
  // The first image of any batch is the same image.
  EXPECT_LT(MaxRelativeError({batch.begin(), batch.begin() + 10}, single), 1e-5);
  EXPECT_GT(MaxRelativeError({batch.begin() + 10, batch.begin() + 20}, single), 1e-3);
}

TEST(EigenRuntimeTest, RepeatedRunsAndReprepareAreConsistent) {
  EigenRuntime runtime;
  Nb201Cell a = *core::Nb201Space::CellFromOpCodes({3, 3, 3, 3, 3, 3});
  Nb201Cell b = *core::Nb201Space::CellFromOpCodes({1, 1, 1, 1, 1, 1});
  ASSERT_TRUE(runtime.Prepare(a, 1, 1).ok());
  ASSERT_TRUE(runtime.Run().ok());
  std::vector<float> first = *runtime.Output();
  ASSERT_TRUE(runtime.Run().ok());
  EXPECT_EQ(*runtime.Output(), first);
  ASSERT_TRUE(runtime.Prepare(b, 1, 1).ok());
  ASSERT_TRUE(runtime.Run().ok());
  EXPECT_NE(*runtime.Output(), first);
}

// The FBNet network of one image, naively, from the macro-architecture.
std::vector<float> FbnetReferenceLogits(const core::Architecture& arch, uint64_t seed) {
  const FbnetNetwork net = BuildFbnetNetwork(arch, seed);
  Image x(kNb201InputChannels, kNb201ImageSize, kNb201ImageSize);
  x.v = MakeNb201Input(1, seed);
  x = Relu(Conv(net.stem, x));
  for (const FbnetLayerWeights& layer : net.layers) {
    if (!layer.expand) {  // skip: identity, or a 1x1 projection with BN
      if (layer.project) x = Conv(*layer.project, x);
      continue;
    }
    Image y = Conv(*layer.project, Relu(Conv(*layer.depthwise, Relu(Conv(*layer.expand, x)))));
    if (layer.keeps_shape) Add(y, x);
    x = std::move(y);
  }
  x = Relu(Conv(net.head, x));
  std::vector<float> logits(kFbnetClasses);
  for (int j = 0; j < kFbnetClasses; ++j) {
    double sum = net.classifier_bias[j];
    for (int c = 0; c < x.c; ++c) {
      double mean = 0;
      for (int p = 0; p < x.h * x.w; ++p) mean += x.v[size_t(c) * x.h * x.w + p];
      sum += net.classifier_weights[size_t(j) * x.c + c] * mean / (x.h * x.w);
    }
    logits[j] = static_cast<float>(sum);
  }
  return logits;
}

TEST(EigenRuntimeTest, MatchesNaiveFbnetReference) {
  // Every block type, at stride-1 residual layers and at stride-2 layers, in one network.
  std::vector<core::Architecture> archs = {*core::FbnetSpace::Get().Parse(
      "k3_e1-k3_e1_g2-k3_e3-k3_e6-k5_e1-k5_e1_g2-k5_e3-k5_e6-skip-k3_e1-k3_e1_g2-k3_e3-k3_e6-"
      "k5_e1-k5_e1_g2-k5_e3-k5_e6-skip-k5_e6-skip-k3_e1_g2-k5_e3")};
  archs.push_back(core::FbnetSpace::Get().Sample(1, 77)[0]);
  for (const core::Architecture& arch : archs) {
    EigenRuntime runtime(kDefaultNb201Seed);
    std::vector<float> actual = RunOnce(runtime, arch, 1, 1);
    ASSERT_EQ(actual.size(), 100u);
    EXPECT_LT(MaxRelativeError(actual, FbnetReferenceLogits(arch, kDefaultNb201Seed)), 1e-4)
        << arch.ToString();
  }
}

TEST(EigenRuntimeTest, RunsFbnetNetworks) {
  const core::Architecture arch = core::FbnetSpace::Get().Sample(1, 9)[0];
  EigenRuntime runtime;
  std::vector<float> single = RunOnce(runtime, arch, 1, 1);
  ASSERT_EQ(single.size(), 100u);
  for (float v : single) ASSERT_TRUE(std::isfinite(v));
  std::vector<float> batch = RunOnce(runtime, arch, 3, 2);
  ASSERT_EQ(batch.size(), 300u);
  // The first image of any batch is the same image; threads do not change the result.
  EXPECT_LT(MaxRelativeError({batch.begin(), batch.begin() + 100}, single), 1e-5);
  EXPECT_GT(MaxRelativeError({batch.begin() + 100, batch.begin() + 200}, single), 1e-3);
  // Switching back to NB201 after FBNet: 10 logits again.
  EXPECT_EQ(RunOnce(runtime, *core::Nb201Space::CellFromOpCodes({3, 3, 3, 3, 3, 3}), 1, 1).size(),
            10u);
}

TEST(EigenRuntimeTest, RefusesASpaceItCannotBuild) {
  ToySpace toy;
  EigenRuntime runtime;
  absl::Status status = runtime.Prepare(*toy.Parse("b"), 1, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("\"toy\""), std::string::npos) << status;
  EXPECT_EQ(runtime.Prepare(core::Architecture(), 1, 1).code(), absl::StatusCode::kInvalidArgument);
}

TEST(EigenRuntimeTest, ContractErrors) {
  EigenRuntime runtime;
  EXPECT_EQ(runtime.name(), "eigen");
  EXPECT_EQ(runtime.Run().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(runtime.Output().status().code(), absl::StatusCode::kFailedPrecondition);
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({1, 1, 1, 1, 1, 1});
  EXPECT_EQ(runtime.Prepare(cell, 0, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime.Prepare(cell, 1, 0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(runtime.Prepare(cell, 1, 1).ok());
  EXPECT_EQ(runtime.Output().status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::optional<double>> run = runtime.Run();
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(run->has_value());  // the caller times built-in runtimes
}

}  // namespace
}  // namespace maplex::agent

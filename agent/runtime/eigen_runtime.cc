#include "agent/runtime/eigen_runtime.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <Eigen/Core>

#include "absl/status/status.h"

namespace maplex::agent {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;

// NHWC activations. `data` keeps its capacity when a later stage shrinks the shape.
struct Tensor {
  int n = 0, h = 0, w = 0, c = 0;
  std::vector<float> data;
  void Reshape(int n_, int h_, int w_, int c_) {
    n = n_, h = h_, w = w_, c = c_;
    data.resize(static_cast<size_t>(n) * h * w * c);
  }
  int64_t pixels() const { return int64_t{n} * h * w; }
  MatrixMap matrix() { return MatrixMap(data.data(), pixels(), c); }
  ConstMatrixMap matrix() const { return ConstMatrixMap(data.data(), pixels(), c); }
};

struct GemmConv {
  int in_channels, out_channels, kernel, stride;
  RowMatrix weights;  // [(kh * k + kw) * C_in + ci][C_out]
  Eigen::RowVectorXf bias;
};

GemmConv ToGemm(const FoldedConv& folded) {
  GemmConv conv{folded.in_channels, folded.out_channels, folded.kernel, folded.stride, {}, {}};
  const int k = folded.kernel, in = folded.in_channels;
  conv.weights.resize(int64_t{k} * k * in, folded.out_channels);
  for (int o = 0; o < folded.out_channels; ++o) {
    for (int ci = 0; ci < in; ++ci) {
      for (int kh = 0; kh < k; ++kh) {
        for (int kw = 0; kw < k; ++kw) {
          conv.weights((kh * k + kw) * in + ci, o) =
              folded.weights[((static_cast<size_t>(o) * in + ci) * k + kh) * k + kw];
        }
      }
    }
  }
  conv.bias = Eigen::Map<const Eigen::RowVectorXf>(folded.bias.data(), folded.out_channels);
  return conv;
}

// out (=, or += when `accumulate`) conv(in). `scratch` holds the im2col patches.
void Convolve(const GemmConv& conv, const Tensor& in, Tensor& out, bool accumulate,
              std::vector<float>& scratch, int threads) {
  const int k = conv.kernel, s = conv.stride, pad = (k - 1) / 2;
  const int oh = (in.h + 2 * pad - k) / s + 1, ow = (in.w + 2 * pad - k) / s + 1;
  if (!accumulate) out.Reshape(in.n, oh, ow, conv.out_channels);
  const int64_t rows = int64_t{in.n} * oh * ow;
  const int64_t cols = int64_t{k} * k * in.c;
  const float* patches = in.data.data();
  if (k != 1 || s != 1) {
    scratch.resize(rows * cols);
    const size_t channel_bytes = sizeof(float) * in.c;
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (int64_t row = 0; row < rows; ++row) {
      const int x = row % ow, y = (row / ow) % oh, b = row / (int64_t{ow} * oh);
      float* dst = scratch.data() + row * cols;
      for (int kh = 0; kh < k; ++kh) {
        const int iy = y * s - pad + kh;
        for (int kw = 0; kw < k; ++kw, dst += in.c) {
          const int ix = x * s - pad + kw;
          if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) {
            std::fill(dst, dst + in.c, 0.0f);
          } else {
            std::memcpy(dst, in.data.data() + ((int64_t{b} * in.h + iy) * in.w + ix) * in.c,
                        channel_bytes);
          }
        }
      }
    }
    patches = scratch.data();
  }
  ConstMatrixMap a(patches, rows, cols);
  MatrixMap c = out.matrix();
  if (accumulate) {
    c.noalias() += a * conv.weights;
  } else {
    c.noalias() = a * conv.weights;
  }
  c.rowwise() += conv.bias;
}

void Relu(const Tensor& in, Tensor& out) {
  out.Reshape(in.n, in.h, in.w, in.c);
  out.matrix().array() = in.matrix().array().max(0.0f);
}

// 3x3, stride 1, padding 1, padding not counted (count_include_pad=False).
void AvgPool3x3(const Tensor& in, Tensor& out, bool accumulate, int threads) {
  if (!accumulate) out.Reshape(in.n, in.h, in.w, in.c);
  const int64_t pixels = in.pixels();
#pragma omp parallel for num_threads(threads) if (threads > 1)
  for (int64_t p = 0; p < pixels; ++p) {
    const int x = p % in.w, y = (p / in.w) % in.h, b = p / (int64_t{in.w} * in.h);
    const int y0 = std::max(y - 1, 0), y1 = std::min(y + 1, in.h - 1);
    const int x0 = std::max(x - 1, 0), x1 = std::min(x + 1, in.w - 1);
    Eigen::Map<Eigen::ArrayXf> dst(out.data.data() + p * in.c, in.c);
    Eigen::ArrayXf sum = Eigen::ArrayXf::Zero(in.c);
    for (int iy = y0; iy <= y1; ++iy) {
      for (int ix = x0; ix <= x1; ++ix) {
        sum += Eigen::Map<const Eigen::ArrayXf>(
            in.data.data() + ((int64_t{b} * in.h + iy) * in.w + ix) * in.c, in.c);
      }
    }
    sum /= static_cast<float>((y1 - y0 + 1) * (x1 - x0 + 1));
    if (accumulate) {
      dst += sum;
    } else {
      dst = sum;
    }
  }
}

// 2x2, stride 2 (the reduction block's shortcut).
void AvgPool2x2(const Tensor& in, Tensor& out) {
  out.Reshape(in.n, in.h / 2, in.w / 2, in.c);
  for (int b = 0; b < in.n; ++b) {
    for (int y = 0; y < out.h; ++y) {
      for (int x = 0; x < out.w; ++x) {
        auto at = [&](int iy, int ix) {
          return Eigen::Map<const Eigen::ArrayXf>(
              in.data.data() + ((int64_t{b} * in.h + iy) * in.w + ix) * in.c, in.c);
        };
        Eigen::Map<Eigen::ArrayXf>(
            out.data.data() + ((int64_t{b} * out.h + y) * out.w + x) * out.c, out.c) =
            0.25f * (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) +
                     at(2 * y + 1, 2 * x + 1));
      }
    }
  }
}

}  // namespace

struct EigenRuntime::Plan {
  Nb201Cell cell;
  int batch = 0;
  int threads = 1;
  GemmConv stem;
  std::vector<std::array<std::optional<GemmConv>, 6>> cells;
  struct Reduction {
    GemmConv conv_a, conv_b, shortcut;
  };
  std::vector<Reduction> reductions;
  Eigen::RowVectorXf head_scale, head_shift;
  RowMatrix classifier;  // [64][10]
  Eigen::RowVectorXf classifier_bias;
  Tensor input;
  // Working buffers, reused across runs.
  Tensor x, nodes[4], relus[4], tmp;
  std::vector<float> scratch;
  RowMatrix logits;
  bool ran = false;

  void RunCell(const std::array<std::optional<GemmConv>, 6>& convs) {
    // nodes[0] is the cell input; it is swapped in from x and back out at the end.
    std::swap(nodes[0], x);
    for (int to = 1; to <= 3; ++to) {
      bool written = false;
      for (int from = 0; from < to; ++from) {
        const Nb201Op op = cell.op(to, from);
        const Tensor& source = nodes[from];
        switch (op) {
          case Nb201Op::kNone:
            continue;
          case Nb201Op::kSkipConnect:
            if (written) {
              nodes[to].matrix() += source.matrix();
            } else {
              nodes[to].Reshape(source.n, source.h, source.w, source.c);
              nodes[to].data.assign(source.data.begin(), source.data.end());
            }
            break;
          case Nb201Op::kConv1x1:
          case Nb201Op::kConv3x3:
            Convolve(*convs[Nb201Cell::EdgeIndex(to, from)], relus[from], nodes[to], written,
                     scratch, threads);
            break;
          case Nb201Op::kAvgPool3x3:
            AvgPool3x3(source, nodes[to], written, threads);
            break;
        }
        written = true;
      }
      if (!written) {  // only "none" edges: the node is zero
        nodes[to].Reshape(nodes[0].n, nodes[0].h, nodes[0].w, nodes[0].c);
        std::fill(nodes[to].data.begin(), nodes[to].data.end(), 0.0f);
      }
      // ReLU of the new node, once, if a later convolution reads it.
      if (to < 3 && Nb201NodeFeedsConv(cell, to)) Relu(nodes[to], relus[to]);
    }
    std::swap(x, nodes[3]);
  }

  void Forward() {
    Convolve(stem, input, x, false, scratch, threads);
    for (int stage = 0; stage < 3; ++stage) {
      if (stage > 0) {
        const Reduction& r = reductions[stage - 1];
        Relu(x, relus[0]);
        Convolve(r.conv_a, relus[0], tmp, false, scratch, threads);
        Relu(tmp, relus[1]);
        AvgPool2x2(x, nodes[1]);
        Convolve(r.shortcut, nodes[1], nodes[2], false, scratch, threads);
        Convolve(r.conv_b, relus[1], nodes[2], true, scratch, threads);
        std::swap(x, nodes[2]);
      }
      for (int c = 0; c < kNb201CellsPerStage; ++c) {
        // Relu of the cell input, if a convolution reads it.
        if (Nb201NodeFeedsConv(cell, 0)) Relu(x, relus[0]);
        RunCell(cells[stage * kNb201CellsPerStage + c]);
      }
    }
    // Head: BN, ReLU, global average pool, linear.
    const int64_t area = int64_t{x.h} * x.w;
    RowMatrix pooled(x.n, x.c);
    for (int b = 0; b < x.n; ++b) {
      ConstMatrixMap image(x.data.data() + b * area * x.c, area, x.c);
      pooled.row(b) = ((image.array().rowwise() * head_scale.array()).rowwise() +
                       head_shift.array())
                          .max(0.0f)
                          .colwise()
                          .mean();
    }
    logits.noalias() = pooled * classifier;
    logits.rowwise() += classifier_bias;
  }
};

EigenRuntime::EigenRuntime(uint64_t seed) : seed_(seed) {}
EigenRuntime::~EigenRuntime() = default;

absl::Status EigenRuntime::Prepare(const Nb201Cell& cell, int batch, int threads) {
  if (batch < 1 || threads < 1) {
    return absl::InvalidArgumentError("batch and threads must be at least 1");
  }
  const Nb201Network net = BuildNb201Network(cell, seed_);
  auto plan = std::make_unique<Plan>();
  plan->cell = cell;
  plan->batch = batch;
  plan->threads = threads;
  plan->stem = ToGemm(net.stem);
  for (const Nb201CellWeights& weights : net.cells) {
    std::array<std::optional<GemmConv>, 6> convs;
    for (int e = 0; e < 6; ++e) {
      if (weights.convs[e]) convs[e] = ToGemm(*weights.convs[e]);
    }
    plan->cells.push_back(std::move(convs));
  }
  for (const Nb201ReductionWeights& r : net.reductions) {
    plan->reductions.push_back({ToGemm(r.conv_a), ToGemm(r.conv_b), ToGemm(r.shortcut)});
  }
  const BatchNormParams& bn = net.head_bn;
  const int channels = static_cast<int>(bn.gamma.size());
  plan->head_scale.resize(channels);
  plan->head_shift.resize(channels);
  for (int c = 0; c < channels; ++c) {
    plan->head_scale[c] = bn.gamma[c] / std::sqrt(bn.variance[c] + bn.epsilon);
    plan->head_shift[c] = bn.beta[c] - bn.mean[c] * plan->head_scale[c];
  }
  plan->classifier = ConstMatrixMap(net.classifier_weights.data(), kNb201Classes, channels)
                         .transpose();
  plan->classifier_bias =
      Eigen::Map<const Eigen::RowVectorXf>(net.classifier_bias.data(), kNb201Classes);
  // NCHW images -> NHWC once, outside the timed runs.
  const std::vector<float> nchw = MakeNb201Input(batch, seed_);
  const int hw = kNb201ImageSize * kNb201ImageSize, c_in = kNb201InputChannels;
  plan->input.Reshape(batch, kNb201ImageSize, kNb201ImageSize, c_in);
  for (int b = 0; b < batch; ++b) {
    for (int c = 0; c < c_in; ++c) {
      for (int p = 0; p < hw; ++p) {
        plan->input.data[(int64_t{b} * hw + p) * c_in + c] = nchw[(int64_t{b} * c_in + c) * hw + p];
      }
    }
  }
  plan_ = std::move(plan);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<double>> EigenRuntime::Run() {
  if (!plan_) return absl::FailedPreconditionError("EigenRuntime::Run before Prepare");
  // Eigen's GEMM reads a process-wide thread count; set it on every run in case another
  // runtime changed it.
  Eigen::setNbThreads(plan_->threads);
  plan_->Forward();
  plan_->ran = true;
  return std::optional<double>();
}

absl::StatusOr<std::vector<float>> EigenRuntime::Output() const {
  if (!plan_ || !plan_->ran) return absl::FailedPreconditionError("no run yet");
  return std::vector<float>(plan_->logits.data(), plan_->logits.data() + plan_->logits.size());
}

}  // namespace maplex::agent

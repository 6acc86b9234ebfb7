#include "agent/runtime/eigen_runtime.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

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

// Output rows per GEMM block: enough that the block's patches (rows x k*k*C_in floats)
// stay within ~256 KiB, so they are still in L2 when the GEMM reads them back; but at
// least 256, because Eigen repacks the weights on every GEMM call and in stage 3 the
// weights (576 x 64..192) outweigh a small block of patches.
int64_t BlockRows(int64_t cols) { return std::max<int64_t>(256, (int64_t{64} << 10) / cols); }

// out (=, or += when `accumulate`) conv(in), block of output rows by block; blocks are
// shared among `threads` OpenMP threads. `scratch` holds one patch buffer per thread.
void Convolve(const GemmConv& conv, const Tensor& in, Tensor& out, bool accumulate,
              std::vector<std::vector<float>>& scratch, int threads) {
  const int k = conv.kernel, s = conv.stride, pad = (k - 1) / 2;
  const int oh = (in.h + 2 * pad - k) / s + 1, ow = (in.w + 2 * pad - k) / s + 1;
  if (!accumulate) out.Reshape(in.n, oh, ow, conv.out_channels);
  const int64_t rows = int64_t{in.n} * oh * ow;
  const int64_t cols = int64_t{k} * k * in.c;
  const bool gather = k != 1 || s != 1;  // a 1x1 stride-1 conv reads its input as is
  const int64_t block = BlockRows(cols);
  const int64_t blocks = (rows + block - 1) / block;
  scratch.resize(std::max<size_t>(scratch.size(), threads));
  const size_t channel_bytes = sizeof(float) * in.c;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
  for (int64_t index = 0; index < blocks; ++index) {
    const int64_t first = index * block, count = std::min(block, rows - first);
    const float* patches = in.data.data() + first * cols;
    if (gather) {
      std::vector<float>& buffer = scratch[omp_get_thread_num()];
      buffer.resize(block * cols);
      // (b, y, x) of the block's first row, then stepped along: no divisions per row.
      int x = first % ow, y = (first / ow) % oh, b = first / (int64_t{ow} * oh);
      for (int64_t row = first; row < first + count; ++row, ++x) {
        if (x == ow) {
          x = 0;
          if (++y == oh) y = 0, ++b;
        }
        float* dst = buffer.data() + (row - first) * cols;
        // The taps of one kernel row are neighbouring pixels, contiguous in NHWC: copy the
        // in-image ones at once and zero the padding.
        const int x0 = x * s - pad;
        const int first_tap = std::max(0, -x0), last_tap = std::min(k, in.w - x0);
        for (int kh = 0; kh < k; ++kh, dst += int64_t{k} * in.c) {
          const int iy = y * s - pad + kh;
          if (iy < 0 || iy >= in.h || first_tap >= last_tap) {
            std::fill(dst, dst + int64_t{k} * in.c, 0.0f);
            continue;
          }
          std::fill(dst, dst + int64_t{first_tap} * in.c, 0.0f);
          std::memcpy(dst + int64_t{first_tap} * in.c,
                      in.data.data() + ((int64_t{b} * in.h + iy) * in.w + x0 + first_tap) * in.c,
                      channel_bytes * (last_tap - first_tap));
          std::fill(dst + int64_t{last_tap} * in.c, dst + int64_t{k} * in.c, 0.0f);
        }
      }
      patches = buffer.data();
    }
    ConstMatrixMap a(patches, count, cols);
    MatrixMap c(out.data.data() + first * conv.out_channels, count, conv.out_channels);
    // Starting from the bias saves the pass Eigen would spend zeroing the output.
    if (accumulate) {
      c.rowwise() += conv.bias;
    } else {
      c.rowwise() = conv.bias;
    }
    c.noalias() += a * conv.weights;
  }
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
    // Scaled taps summed straight into the output: no per-pixel temporary.
    const float scale = 1.0f / static_cast<float>((y1 - y0 + 1) * (x1 - x0 + 1));
    float* dst = out.data.data() + p * in.c;
    if (!accumulate) std::fill(dst, dst + in.c, 0.0f);
    for (int iy = y0; iy <= y1; ++iy) {
      for (int ix = x0; ix <= x1; ++ix) {
        const float* src = in.data.data() + ((int64_t{b} * in.h + iy) * in.w + ix) * in.c;
        for (int c = 0; c < in.c; ++c) dst[c] += scale * src[c];
      }
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
        Eigen::Map<Eigen::ArrayXf>(out.data.data() + ((int64_t{b} * out.h + y) * out.w + x) * out.c,
                                   out.c) =
            0.25f * (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) +
                     at(2 * y + 1, 2 * x + 1));
      }
    }
  }
}

// The convolutions of one cell that read the same node with the same kernel size, run
// as one GEMM over their concatenated output channels: the patches are gathered once
// and the GEMM is wider (16 output columns are too few to keep AVX-512 busy).
struct ConvGroup {
  int source = 0;          // node read
  std::vector<int> edges;  // edges in the group; edge g owns output columns [g*C, (g+1)*C)
  GemmConv conv;
};

struct CellPlan {
  std::vector<ConvGroup> groups;
  // For each conv edge: its group and the column where its output starts.
  std::array<int, 6> group_of{}, column_of{};
};

CellPlan PlanCell(const Nb201Cell& cell, const Nb201CellWeights& weights) {
  CellPlan plan;
  for (int source = 0; source < 3; ++source) {
    for (Nb201Op kind : {Nb201Op::kNorConv1x1, Nb201Op::kNorConv3x3}) {
      FoldedConv merged;
      ConvGroup group;
      group.source = source;
      for (int to = source + 1; to <= 3; ++to) {
        const int edge = core::Nb201EdgeIndex(to, source);
        if (cell[edge] != kind) continue;
        const FoldedConv& conv = *weights.convs[edge];
        if (group.edges.empty()) {
          merged = conv;
        } else {  // OIHW: more output channels are appended rows
          merged.out_channels += conv.out_channels;
          merged.weights.insert(merged.weights.end(), conv.weights.begin(), conv.weights.end());
          merged.bias.insert(merged.bias.end(), conv.bias.begin(), conv.bias.end());
        }
        plan.group_of[edge] = static_cast<int>(plan.groups.size());
        plan.column_of[edge] = static_cast<int>(group.edges.size()) * conv.out_channels;
        group.edges.push_back(edge);
      }
      if (group.edges.empty()) continue;
      group.conv = ToGemm(merged);
      plan.groups.push_back(std::move(group));
    }
  }
  return plan;
}

// A 1x1 stride-1 convolution in `groups` groups: one GEMM per group over strided column
// slices of the NHWC input and output (a block-diagonal dense GEMM would do G times the
// work, hiding exactly what grouping saves on a device).
struct GroupedPointwise {
  int in_channels, out_channels, groups;
  std::vector<RowMatrix> weights;  // per group [C_in / G][C_out / G]
  Eigen::RowVectorXf bias;
};

GroupedPointwise ToGroupedPointwise(const FoldedConv& folded) {
  GroupedPointwise conv{folded.in_channels, folded.out_channels, folded.groups, {}, {}};
  const int ig = folded.in_channels / folded.groups, og = folded.out_channels / folded.groups;
  for (int g = 0; g < folded.groups; ++g) {
    RowMatrix w(ig, og);
    for (int o = 0; o < og; ++o) {
      for (int ci = 0; ci < ig; ++ci) {
        w(ci, o) = folded.weights[(static_cast<size_t>(g) * og + o) * ig + ci];
      }
    }
    conv.weights.push_back(std::move(w));
  }
  conv.bias = Eigen::Map<const Eigen::RowVectorXf>(folded.bias.data(), folded.out_channels);
  return conv;
}

using StridedMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

// out (=, or += when `accumulate`) conv(in), blocks of rows shared among the threads.
void ConvolveGrouped(const GroupedPointwise& conv, const Tensor& in, Tensor& out, bool accumulate,
                     int threads) {
  if (!accumulate) out.Reshape(in.n, in.h, in.w, conv.out_channels);
  const int ig = conv.in_channels / conv.groups, og = conv.out_channels / conv.groups;
  const int64_t rows = in.pixels();
  const int64_t block = BlockRows(ig);
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
  for (int64_t index = 0; index < blocks; ++index) {
    const int64_t first = index * block, count = std::min(block, rows - first);
    for (int g = 0; g < conv.groups; ++g) {
      ConstStridedMap a(in.data.data() + first * in.c + int64_t{g} * ig, count, ig,
                        Eigen::OuterStride<>(in.c));
      StridedMap c(out.data.data() + first * out.c + int64_t{g} * og, count, og,
                   Eigen::OuterStride<>(out.c));
      if (accumulate) {
        c.rowwise() += conv.bias.segment(int64_t{g} * og, og);
      } else {
        c.rowwise() = conv.bias.segment(int64_t{g} * og, og);
      }
      c.noalias() += a * conv.weights[g];
    }
  }
}

// A KxK depthwise convolution (padding (K - 1) / 2) followed by ReLU.
struct DepthwiseConv {
  int channels, kernel, stride;
  RowMatrix weights;  // [kh * K + kw][C]: a tap's weights are contiguous, as NHWC pixels are
  Eigen::RowVectorXf bias;
};

DepthwiseConv ToDepthwise(const FoldedConv& folded) {
  const int k = folded.kernel, c = folded.out_channels;
  DepthwiseConv conv{c, k, folded.stride, RowMatrix(k * k, c), {}};
  for (int ch = 0; ch < c; ++ch) {
    for (int tap = 0; tap < k * k; ++tap) conv.weights(tap, ch) = folded.weights[ch * k * k + tap];
  }
  conv.bias = Eigen::Map<const Eigen::RowVectorXf>(folded.bias.data(), c);
  return conv;
}

void DepthwiseRelu(const DepthwiseConv& conv, const Tensor& in, Tensor& out, int threads) {
  const int k = conv.kernel, s = conv.stride, pad = (k - 1) / 2, c = conv.channels;
  const int oh = (in.h + 2 * pad - k) / s + 1, ow = (in.w + 2 * pad - k) / s + 1;
  out.Reshape(in.n, oh, ow, c);
  const int64_t rows = int64_t{in.n} * oh;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t row = 0; row < rows; ++row) {
    const int b = row / oh, y = row % oh;
    for (int x = 0; x < ow; ++x) {
      Eigen::Map<Eigen::ArrayXf> dst(out.data.data() + ((int64_t{b} * oh + y) * ow + x) * c, c);
      dst = conv.bias.array().transpose();
      for (int kh = 0; kh < k; ++kh) {
        const int iy = y * s - pad + kh;
        if (iy < 0 || iy >= in.h) continue;
        for (int kw = 0; kw < k; ++kw) {
          const int ix = x * s - pad + kw;
          if (ix < 0 || ix >= in.w) continue;
          dst += Eigen::Map<const Eigen::ArrayXf>(
                     in.data.data() + ((int64_t{b} * in.h + iy) * in.w + ix) * c, c) *
                 Eigen::Map<const Eigen::ArrayXf>(conv.weights.data() + (kh * k + kw) * c, c);
        }
      }
      dst = dst.max(0.0f);
    }
  }
}

void ReluInPlace(Tensor& t) { t.matrix().array() = t.matrix().array().max(0.0f); }

// A 1x1 convolution: one GEMM, or per-group GEMMs.
struct Pointwise {
  std::optional<GemmConv> dense;
  std::optional<GroupedPointwise> grouped;
};

Pointwise ToPointwise(const FoldedConv& folded) {
  Pointwise p;
  if (folded.groups == 1) {
    p.dense = ToGemm(folded);
  } else {
    p.grouped = ToGroupedPointwise(folded);
  }
  return p;
}

}  // namespace

struct EigenRuntime::Plan {
  Nb201Cell cell;
  int batch = 0;
  int threads = 1;
  GemmConv stem;
  std::vector<CellPlan> cells;
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
  std::vector<Tensor> group_outputs;
  std::vector<std::vector<float>> scratch;  // im2col patches, one buffer per thread
  RowMatrix logits;
  bool ran = false;

  void RunCell(const CellPlan& plan) {
    // nodes[0] is the cell input; it is swapped in from x and back out at the end.
    std::swap(nodes[0], x);
    group_outputs.resize(std::max(group_outputs.size(), plan.groups.size()));
    for (int node = 0; node <= 3; ++node) {
      if (node > 0) AssembleNode(plan, node);
      if (node == 3) break;
      // Every convolution reading this node, now that it is complete.
      if (Nb201NodeFeedsConv(cell, node)) Relu(nodes[node], relus[node]);
      for (size_t g = 0; g < plan.groups.size(); ++g) {
        if (plan.groups[g].source != node) continue;
        Convolve(plan.groups[g].conv, relus[node], group_outputs[g], false, scratch, threads);
      }
    }
    std::swap(x, nodes[3]);
  }

  // node = sum over its in-edges; convolution results come from the group outputs.
  void AssembleNode(const CellPlan& plan, int node) {
    Tensor& out = nodes[node];
    const Tensor& shape = nodes[0];
    bool written = false;
    for (int from = 0; from < node; ++from) {
      const int edge = core::Nb201EdgeIndex(node, from);
      const Tensor& source = nodes[from];
      switch (cell[edge]) {
        case Nb201Op::kNone:
          continue;
        case Nb201Op::kSkipConnect:
          if (written) {
            out.matrix() += source.matrix();
          } else {
            out.Reshape(source.n, source.h, source.w, source.c);
            out.data.assign(source.data.begin(), source.data.end());
          }
          break;
        case Nb201Op::kNorConv1x1:
        case Nb201Op::kNorConv3x3: {
          const Tensor& group = group_outputs[plan.group_of[edge]];
          Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>> slice(
              group.data.data() + plan.column_of[edge], group.pixels(), shape.c,
              Eigen::OuterStride<>(group.c));
          if (written) {
            out.matrix() += slice;
          } else {
            out.Reshape(shape.n, shape.h, shape.w, shape.c);
            out.matrix() = slice;
          }
          break;
        }
        case Nb201Op::kAvgPool3x3:
          AvgPool3x3(source, out, written, threads);
          break;
      }
      written = true;
    }
    if (!written) {  // only "none" edges: the node is zero
      out.Reshape(shape.n, shape.h, shape.w, shape.c);
      std::fill(out.data.begin(), out.data.end(), 0.0f);
    }
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
        RunCell(cells[stage * kNb201CellsPerStage + c]);
      }
    }
    // Head: BN, ReLU, global average pool, linear.
    const int64_t area = int64_t{x.h} * x.w;
    RowMatrix pooled(x.n, x.c);
    for (int b = 0; b < x.n; ++b) {
      ConstMatrixMap image(x.data.data() + b * area * x.c, area, x.c);
      pooled.row(b) =
          ((image.array().rowwise() * head_scale.array()).rowwise() + head_shift.array())
              .max(0.0f)
              .colwise()
              .mean();
    }
    logits.noalias() = pooled * classifier;
    logits.rowwise() += classifier_bias;
  }
};

struct EigenRuntime::FbnetPlan {
  struct Layer {
    bool keeps_shape = false;
    std::optional<Pointwise> expand, project;  // project is a skip's projection too
    std::optional<DepthwiseConv> depthwise;
  };
  int threads = 1;
  GemmConv stem, head;
  std::vector<Layer> layers;
  RowMatrix classifier;  // [1504][100]
  Eigen::RowVectorXf classifier_bias;
  Tensor input;
  // Working buffers, reused across runs.
  Tensor x, expanded, filtered, next;
  std::vector<std::vector<float>> scratch;  // im2col patches, one buffer per thread
  RowMatrix logits;
  bool ran = false;

  void Apply(const Pointwise& p, const Tensor& in, Tensor& out, bool accumulate) {
    if (p.dense) {
      Convolve(*p.dense, in, out, accumulate, scratch, threads);
    } else {
      ConvolveGrouped(*p.grouped, in, out, accumulate, threads);
    }
  }

  void Forward() {
    Convolve(stem, input, x, false, scratch, threads);
    ReluInPlace(x);
    for (const Layer& layer : layers) {
      if (!layer.expand) {             // skip
        if (!layer.project) continue;  // identity
        Apply(*layer.project, x, next, false);
        std::swap(x, next);
        continue;
      }
      Apply(*layer.expand, x, expanded, false);
      ReluInPlace(expanded);
      DepthwiseRelu(*layer.depthwise, expanded, filtered, threads);
      if (layer.keeps_shape) {  // the block's input, then the projection added onto it
        next.Reshape(x.n, x.h, x.w, x.c);
        next.data.assign(x.data.begin(), x.data.end());
      }
      Apply(*layer.project, filtered, next, /*accumulate=*/layer.keeps_shape);
      std::swap(x, next);
    }
    Convolve(head, x, next, false, scratch, threads);
    // ReLU and global average pool in one pass, then the classifier.
    const int64_t area = int64_t{next.h} * next.w;
    RowMatrix pooled(next.n, next.c);
    for (int b = 0; b < next.n; ++b) {
      ConstMatrixMap image(next.data.data() + b * area * next.c, area, next.c);
      pooled.row(b) = image.array().max(0.0f).colwise().mean();
    }
    logits.noalias() = pooled * classifier;
    logits.rowwise() += classifier_bias;
  }
};

EigenRuntime::EigenRuntime(uint64_t seed) : seed_(seed) {}
EigenRuntime::~EigenRuntime() = default;

namespace {

// `batch` NCHW images of MakeNb201Input -> NHWC, once, outside the timed runs.
void LoadInput(int batch, uint64_t seed, Tensor& input) {
  const std::vector<float> nchw = MakeNb201Input(batch, seed);
  const int hw = kNb201ImageSize * kNb201ImageSize, c_in = kNb201InputChannels;
  input.Reshape(batch, kNb201ImageSize, kNb201ImageSize, c_in);
  for (int b = 0; b < batch; ++b) {
    for (int c = 0; c < c_in; ++c) {
      for (int p = 0; p < hw; ++p) {
        input.data[(int64_t{b} * hw + p) * c_in + c] = nchw[(int64_t{b} * c_in + c) * hw + p];
      }
    }
  }
}

}  // namespace

absl::Status EigenRuntime::Prepare(const core::Architecture& arch, int batch, int threads) {
  if (absl::Status valid = ValidateRuntimeConfig(batch, threads); !valid.ok()) return valid;
  if (arch.space() == &core::Nb201Space::Get()) {
    PrepareNb201(core::Nb201Space::CellOf(arch), batch, threads);
  } else if (arch.space() == &core::FbnetSpace::Get()) {
    PrepareFbnet(arch, batch, threads);
  } else {
    return UnsupportedSpaceError(name(), arch);
  }
  return absl::OkStatus();
}

void EigenRuntime::PrepareNb201(const Nb201Cell& cell, int batch, int threads) {
  fbnet_plan_.reset();
  plan_.reset();
  const Nb201Network net = BuildNb201Network(cell, seed_);
  auto plan = std::make_unique<Plan>();
  plan->cell = cell;
  plan->batch = batch;
  plan->threads = threads;
  plan->stem = ToGemm(net.stem);
  for (const Nb201CellWeights& weights : net.cells) {
    plan->cells.push_back(PlanCell(cell, weights));
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
  plan->classifier =
      ConstMatrixMap(net.classifier_weights.data(), kNb201Classes, channels).transpose();
  plan->classifier_bias =
      Eigen::Map<const Eigen::RowVectorXf>(net.classifier_bias.data(), kNb201Classes);
  LoadInput(batch, seed_, plan->input);
  plan_ = std::move(plan);
}

void EigenRuntime::PrepareFbnet(const core::Architecture& arch, int batch, int threads) {
  fbnet_plan_.reset();
  plan_.reset();
  const FbnetNetwork net = BuildFbnetNetwork(arch, seed_);
  auto plan = std::make_unique<FbnetPlan>();
  plan->threads = threads;
  plan->stem = ToGemm(net.stem);
  for (const FbnetLayerWeights& weights : net.layers) {
    FbnetPlan::Layer layer;
    layer.keeps_shape = weights.keeps_shape;
    if (weights.expand) layer.expand = ToPointwise(*weights.expand);
    if (weights.depthwise) layer.depthwise = ToDepthwise(*weights.depthwise);
    if (weights.project) layer.project = ToPointwise(*weights.project);
    plan->layers.push_back(std::move(layer));
  }
  plan->head = ToGemm(net.head);
  plan->classifier =
      ConstMatrixMap(net.classifier_weights.data(), kFbnetClasses, kFbnetHeadChannels).transpose();
  plan->classifier_bias =
      Eigen::Map<const Eigen::RowVectorXf>(net.classifier_bias.data(), kFbnetClasses);
  LoadInput(batch, seed_, plan->input);
  fbnet_plan_ = std::move(plan);
}

absl::StatusOr<std::optional<double>> EigenRuntime::Run() {
  if (!plan_ && !fbnet_plan_)
    return absl::FailedPreconditionError("EigenRuntime::Run before Prepare");
  // Threads split the convolutions' row blocks; each block's GEMM runs single-threaded.
  // Eigen's thread count is process-wide, so it is set on every run.
  Eigen::setNbThreads(1);
  if (plan_) {
    plan_->Forward();
    plan_->ran = true;
  } else {
    fbnet_plan_->Forward();
    fbnet_plan_->ran = true;
  }
  return std::optional<double>();
}

absl::StatusOr<std::vector<float>> EigenRuntime::Output() const {
  const RowMatrix* logits = nullptr;
  if (plan_ && plan_->ran) logits = &plan_->logits;
  if (fbnet_plan_ && fbnet_plan_->ran) logits = &fbnet_plan_->logits;
  if (logits == nullptr) return absl::FailedPreconditionError("no run yet");
  return std::vector<float>(logits->data(), logits->data() + logits->size());
}

}  // namespace maplex::agent

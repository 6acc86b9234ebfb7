#include "agent/runtime/onednn_runtime.h"

#include <omp.h>

#include <cstring>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace maplex::agent {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;

void CopyInto(const memory& destination, const std::vector<float>& values) {
  std::memcpy(destination.get_data_handle(), values.data(), values.size() * sizeof(float));
}

}  // namespace

struct OneDnnRuntime::Plan {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  int batch = 0;
  int threads = 1;
  int classes = kNb201Classes;
  std::vector<std::function<void()>> steps;
  memory logits;
  bool ran = false;

  memory Activation(int channels, int size) {
    return memory({{batch, channels, size, size}, DataType::f32, Tag::nhwc}, engine);
  }

  // dst (=, or += when `accumulate`) conv(src), then ReLU if `relu_after`.
  void Conv(const FoldedConv& conv, const memory& src, const memory& dst, bool accumulate,
            bool relu_after) {
    const int pad = (conv.kernel - 1) / 2;
    const int g = conv.groups;
    // Grouped (and depthwise) weights are GOIHW: [G][C_out / G][C_in / G][K][K], the
    // FoldedConv layout read with one more dimension.
    const memory::dims weight_dims =
        g == 1 ? memory::dims{conv.out_channels, conv.in_channels, conv.kernel, conv.kernel}
               : memory::dims{g, conv.out_channels / g, conv.in_channels / g, conv.kernel,
                              conv.kernel};
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src.get_desc(),
        memory::desc(weight_dims, DataType::f32, Tag::any),
        memory::desc({conv.out_channels}, DataType::f32, Tag::x), dst.get_desc(),
        {conv.stride, conv.stride}, {pad, pad}, {pad, pad});
    dnnl::post_ops post_ops;
    if (accumulate) post_ops.append_sum(1.0f);
    if (relu_after) post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(post_ops);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    memory user_weights({weight_dims, DataType::f32, g == 1 ? Tag::oihw : Tag::goihw}, engine);
    CopyInto(user_weights, conv.weights);
    memory weights = user_weights;
    if (pd.weights_desc() != user_weights.get_desc()) {
      weights = memory(pd.weights_desc(), engine);
      dnnl::reorder(user_weights, weights).execute(stream, user_weights, weights);
      stream.wait();
    }
    memory bias(pd.bias_desc(), engine);
    CopyInto(bias, conv.bias);
    dnnl::convolution_forward primitive(pd);
    steps.push_back([this, primitive, src, weights, bias, dst] {
      primitive.execute(stream, {{DNNL_ARG_SRC, src},
                                 {DNNL_ARG_WEIGHTS, weights},
                                 {DNNL_ARG_BIAS, bias},
                                 {DNNL_ARG_DST, dst}});
    });
  }

  void Relu(const memory& src, const memory& dst) {
    dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference,
                                     dnnl::algorithm::eltwise_relu, src.get_desc(), 0.0f, 0.0f);
    dnnl::eltwise_forward primitive({desc, engine});
    steps.push_back([this, primitive, src, dst] {
      primitive.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    });
  }

  // Average pooling, padding not counted (PyTorch's count_include_pad=False).
  void AvgPool(const memory& src, const memory& dst, int kernel, int stride, int pad) {
    dnnl::pooling_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_avg_exclude_padding,
        src.get_desc(), dst.get_desc(), {stride, stride}, {kernel, kernel}, {pad, pad}, {pad, pad});
    dnnl::pooling_forward primitive({desc, engine});
    steps.push_back([this, primitive, src, dst] {
      primitive.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    });
  }

  // dst += src
  void AddInto(const memory& src, const memory& dst) {
    dnnl::binary::desc desc(dnnl::algorithm::binary_add, dst.get_desc(), src.get_desc(),
                            dst.get_desc());
    dnnl::binary primitive({desc, engine});
    steps.push_back([this, primitive, src, dst] {
      primitive.execute(stream,
                        {{DNNL_ARG_SRC_0, dst}, {DNNL_ARG_SRC_1, src}, {DNNL_ARG_DST, dst}});
    });
  }

  void Copy(const memory& src, const memory& dst) {
    dnnl::reorder primitive(src, dst);
    steps.push_back([this, primitive, src, dst] {
      primitive.execute(stream, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
    });
  }

  void Zero(const memory& dst) {
    const size_t bytes = dst.get_desc().get_size();
    steps.push_back([dst, bytes] { std::memset(dst.get_data_handle(), 0, bytes); });
  }

  // A stage's working buffers, shared by its cells as a framework's allocator would:
  // cell outputs alternate between two buffers so a cell never overwrites its input.
  struct StageBuffers {
    memory nodes[3];  // nodes 1 and 2 (index 0 unused)
    memory outputs[2];
    memory relus[3];
    memory pooled;
  };

  StageBuffers MakeStageBuffers(int channels, int size) {
    StageBuffers buffers;
    for (int i = 1; i < 3; ++i) buffers.nodes[i] = Activation(channels, size);
    for (memory& output : buffers.outputs) output = Activation(channels, size);
    for (memory& relu : buffers.relus) relu = Activation(channels, size);
    buffers.pooled = Activation(channels, size);
    return buffers;
  }

  // Cell number `index` of a stage on `input`; returns node 3.
  memory Cell(const Nb201Cell& cell, const Nb201CellWeights& weights, const memory& input,
              StageBuffers& buffers, int index) {
    memory nodes[4] = {input, buffers.nodes[1], buffers.nodes[2], buffers.outputs[index % 2]};
    memory relus[3];
    for (int node = 0; node < 3; ++node) {
      if (Nb201NodeFeedsConv(cell, node)) relus[node] = buffers.relus[node];
    }
    if (relus[0]) Relu(nodes[0], relus[0]);
    for (int to = 1; to <= 3; ++to) {
      bool written = false;
      for (int from = 0; from < to; ++from) {
        switch (core::Nb201EdgeOp(cell, to, from)) {
          case Nb201Op::kNone:
            continue;
          case Nb201Op::kSkipConnect:
            if (written) {
              AddInto(nodes[from], nodes[to]);
            } else {
              Copy(nodes[from], nodes[to]);
            }
            break;
          case Nb201Op::kNorConv1x1:
          case Nb201Op::kNorConv3x3:
            Conv(*weights.convs[core::Nb201EdgeIndex(to, from)], relus[from], nodes[to], written,
                 /*relu_after=*/false);
            break;
          case Nb201Op::kAvgPool3x3:
            if (written) {
              AvgPool(nodes[from], buffers.pooled, 3, 1, 1);
              AddInto(buffers.pooled, nodes[to]);
            } else {
              AvgPool(nodes[from], nodes[to], 3, 1, 1);
            }
            break;
        }
        written = true;
      }
      if (!written) Zero(nodes[to]);
      if (to < 3 && relus[to]) Relu(nodes[to], relus[to]);
    }
    return nodes[3];
  }

  memory Reduction(const Nb201ReductionWeights& weights, const memory& input, int in_channels,
                   int channels, int size) {
    const int half = size / 2;
    memory relu_input = Activation(in_channels, size);
    Relu(input, relu_input);
    memory hidden = Activation(channels, half);
    Conv(weights.conv_a, relu_input, hidden, false, /*relu_after=*/true);
    memory pooled = Activation(in_channels, half);
    AvgPool(input, pooled, 2, 2, 0);
    memory output = Activation(channels, half);
    Conv(weights.shortcut, pooled, output, false, false);
    Conv(weights.conv_b, hidden, output, /*accumulate=*/true, false);
    return output;
  }

  // logits = Linear(pooled [batch][channels][1][1]) with `classes` outputs.
  void Linear(const memory& pooled, int channels, const std::vector<float>& classifier_weights,
              const std::vector<float>& classifier_bias) {
    const memory::dims weight_dims = {classes, channels, 1, 1};
    dnnl::inner_product_forward::desc fc_desc(
        dnnl::prop_kind::forward_inference, pooled.get_desc(),
        memory::desc(weight_dims, DataType::f32, Tag::any),
        memory::desc({classes}, DataType::f32, Tag::x),
        memory::desc({batch, classes}, DataType::f32, Tag::nc));
    dnnl::inner_product_forward::primitive_desc fc_pd(fc_desc, engine);
    memory user_weights({weight_dims, DataType::f32, Tag::oihw}, engine);
    CopyInto(user_weights, classifier_weights);
    memory weights(fc_pd.weights_desc(), engine);
    dnnl::reorder(user_weights, weights).execute(stream, user_weights, weights);
    stream.wait();
    memory bias(fc_pd.bias_desc(), engine);
    CopyInto(bias, classifier_bias);
    logits = memory(fc_pd.dst_desc(), engine);
    dnnl::inner_product_forward fc(fc_pd);
    steps.push_back([=] {
      fc.execute(stream, {{DNNL_ARG_SRC, pooled},
                          {DNNL_ARG_WEIGHTS, weights},
                          {DNNL_ARG_BIAS, bias},
                          {DNNL_ARG_DST, logits}});
    });
  }

  // The input images as NHWC memory, reordered once outside the timed runs.
  memory Input(const std::vector<float>& nchw_input) {
    memory user_input(
        {{batch, kNb201InputChannels, kNb201ImageSize, kNb201ImageSize}, DataType::f32, Tag::nchw},
        engine);
    CopyInto(user_input, nchw_input);
    memory input = Activation(kNb201InputChannels, kNb201ImageSize);
    dnnl::reorder(user_input, input).execute(stream, user_input, input);
    stream.wait();
    return input;
  }

  // FBNet: every block's convolutions with BN folded and ReLU as a post-op; a residual
  // block copies its input into the output and the projection adds onto it (sum post-op).
  // Each layer gets its own buffers (under 1 MB each at batch 1).
  void BuildFbnet(const FbnetNetwork& net, const std::vector<float>& nchw_input) {
    classes = kFbnetClasses;
    memory input = Input(nchw_input);
    int size = kNb201ImageSize;
    memory x = Activation(kFbnetStemChannels, size);
    Conv(net.stem, input, x, false, /*relu_after=*/true);
    for (const FbnetLayerWeights& layer : net.layers) {
      const core::FbnetLayer& shape = layer.layer;
      const int out_size = size / shape.stride;
      if (!layer.expand) {             // skip
        if (!layer.project) continue;  // identity
        memory out = Activation(shape.c_out, out_size);
        Conv(*layer.project, x, out, false, false);
        x = out;
        size = out_size;
        continue;
      }
      const int mid = layer.expand->out_channels;
      memory expanded = Activation(mid, size);
      Conv(*layer.expand, x, expanded, false, /*relu_after=*/true);
      memory filtered = Activation(mid, out_size);
      Conv(*layer.depthwise, expanded, filtered, false, /*relu_after=*/true);
      memory out = Activation(shape.c_out, out_size);
      if (layer.keeps_shape) Copy(x, out);
      Conv(*layer.project, filtered, out, /*accumulate=*/layer.keeps_shape, false);
      x = out;
      size = out_size;
    }
    memory head = Activation(kFbnetHeadChannels, size);
    Conv(net.head, x, head, false, /*relu_after=*/true);
    memory pooled = Activation(kFbnetHeadChannels, 1);
    AvgPool(head, pooled, size, size, 0);
    Linear(pooled, kFbnetHeadChannels, net.classifier_weights, net.classifier_bias);
  }

  void Build(const Nb201Network& net, const std::vector<float>& nchw_input) {
    memory input = Input(nchw_input);
    int size = kNb201ImageSize;
    memory x = Activation(kNb201StageChannels[0], size);
    Conv(net.stem, input, x, false, false);
    for (int stage = 0; stage < 3; ++stage) {
      const int channels = kNb201StageChannels[stage];
      if (stage > 0) {
        x = Reduction(net.reductions[stage - 1], x, kNb201StageChannels[stage - 1], channels, size);
        size /= 2;
      }
      StageBuffers buffers = MakeStageBuffers(channels, size);
      for (int c = 0; c < kNb201CellsPerStage; ++c) {
        x = Cell(net.cell, net.cells[stage * kNb201CellsPerStage + c], x, buffers, c);
      }
    }
    // Head: BN + ReLU in one primitive, global average pool, linear.
    const int channels = kNb201StageChannels[2];
    const BatchNormParams& bn = net.head_bn;
    dnnl::batch_normalization_forward::desc bn_desc(
        dnnl::prop_kind::forward_inference, x.get_desc(), bn.epsilon,
        dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
            dnnl::normalization_flags::use_shift | dnnl::normalization_flags::fuse_norm_relu);
    dnnl::batch_normalization_forward bn_primitive({bn_desc, engine});
    const memory::desc channel_desc({channels}, DataType::f32, Tag::x);
    memory mean(channel_desc, engine), variance(channel_desc, engine), scale(channel_desc, engine),
        shift(channel_desc, engine);
    CopyInto(mean, bn.mean);
    CopyInto(variance, bn.variance);
    CopyInto(scale, bn.gamma);
    CopyInto(shift, bn.beta);
    memory normalized = Activation(channels, size);
    steps.push_back([=] {
      bn_primitive.execute(stream, {{DNNL_ARG_SRC, x},
                                    {DNNL_ARG_MEAN, mean},
                                    {DNNL_ARG_VARIANCE, variance},
                                    {DNNL_ARG_SCALE, scale},
                                    {DNNL_ARG_SHIFT, shift},
                                    {DNNL_ARG_DST, normalized}});
    });
    memory pooled = Activation(channels, 1);
    AvgPool(normalized, pooled, size, size, 0);

    Linear(pooled, channels, net.classifier_weights, net.classifier_bias);
  }
};

OneDnnRuntime::OneDnnRuntime(uint64_t seed) : seed_(seed) {}
OneDnnRuntime::~OneDnnRuntime() = default;

absl::Status OneDnnRuntime::Prepare(const core::Architecture& arch, int batch, int threads) {
  if (absl::Status valid = ValidateRuntimeConfig(batch, threads); !valid.ok()) return valid;
  const bool nb201 = arch.space() == &core::Nb201Space::Get();
  if (!nb201 && arch.space() != &core::FbnetSpace::Get())
    return UnsupportedSpaceError(name(), arch);
  plan_.reset();
  try {
    // oneDNN sizes its work split by the thread count at primitive creation.
    omp_set_num_threads(threads);
    auto plan = std::make_unique<Plan>();
    plan->batch = batch;
    plan->threads = threads;
    if (nb201) {
      plan->Build(BuildNb201Network(core::Nb201Space::CellOf(arch), seed_),
                  MakeNb201Input(batch, seed_));
    } else {
      plan->BuildFbnet(BuildFbnetNetwork(arch, seed_), MakeNb201Input(batch, seed_));
    }
    plan_ = std::move(plan);
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN: ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<double>> OneDnnRuntime::Run() {
  if (!plan_) return absl::FailedPreconditionError("OneDnnRuntime::Run before Prepare");
  try {
    omp_set_num_threads(plan_->threads);
    for (const std::function<void()>& step : plan_->steps) step();
    plan_->stream.wait();
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN: ", e.what()));
  }
  plan_->ran = true;
  return std::optional<double>();
}

absl::StatusOr<std::vector<float>> OneDnnRuntime::Output() const {
  if (!plan_ || !plan_->ran) return absl::FailedPreconditionError("no run yet");
  const float* data = static_cast<const float*>(plan_->logits.get_data_handle());
  return std::vector<float>(data, data + plan_->batch * plan_->classes);
}

}  // namespace maplex::agent

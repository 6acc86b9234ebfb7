#include "agent/runtime/nb201_network.h"

#include <cmath>

#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

TEST(Nb201CellTest, NodeFeedsConvOnlyThroughConvEdges) {
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({1, 4, 2, 0, 1, 3});
  EXPECT_FALSE(Nb201NodeFeedsConv(cell, 0));  // skip, pool, none
  EXPECT_TRUE(Nb201NodeFeedsConv(cell, 1));   // 1x1 to node 2
  EXPECT_TRUE(Nb201NodeFeedsConv(cell, 2));   // 3x3 to node 3
}

TEST(BuildNb201NetworkTest, HasTheNb201Shape) {
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({3, 0, 2, 1, 4, 3});
  Nb201Network net = BuildNb201Network(cell, 1);
  EXPECT_EQ(net.stem.in_channels, 3);
  EXPECT_EQ(net.stem.out_channels, 16);
  EXPECT_EQ(net.stem.weights.size(), 16u * 3 * 3 * 3);
  ASSERT_EQ(net.cells.size(), 15u);
  for (int i = 0; i < 15; ++i) {
    const int channels = kNb201StageChannels[i / 5];
    ASSERT_TRUE(net.cells[i].convs[0].has_value());
    EXPECT_EQ(net.cells[i].convs[0]->kernel, 3);
    EXPECT_EQ(net.cells[i].convs[0]->in_channels, channels);
    EXPECT_FALSE(net.cells[i].convs[1].has_value());  // none
    EXPECT_EQ(net.cells[i].convs[2]->kernel, 1);
    EXPECT_FALSE(net.cells[i].convs[3].has_value());  // skip
    EXPECT_FALSE(net.cells[i].convs[4].has_value());  // pool
  }
  ASSERT_EQ(net.reductions.size(), 2u);
  EXPECT_EQ(net.reductions[0].conv_a.stride, 2);
  EXPECT_EQ(net.reductions[0].conv_a.in_channels, 16);
  EXPECT_EQ(net.reductions[1].conv_b.out_channels, 64);
  EXPECT_EQ(net.reductions[1].shortcut.kernel, 1);
  for (float b : net.reductions[1].shortcut.bias) EXPECT_EQ(b, 0.0f);
  EXPECT_EQ(net.head_bn.gamma.size(), 64u);
  EXPECT_EQ(net.classifier_weights.size(), 640u);
  EXPECT_EQ(net.classifier_bias.size(), 10u);
}

TEST(BuildNb201NetworkTest, SeedFixesTheWeights) {
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({3, 3, 3, 3, 3, 3});
  Nb201Network a = BuildNb201Network(cell, 7), b = BuildNb201Network(cell, 7),
               c = BuildNb201Network(cell, 8);
  EXPECT_EQ(a.stem.weights, b.stem.weights);
  EXPECT_EQ(a.cells[14].convs[5]->weights, b.cells[14].convs[5]->weights);
  EXPECT_NE(a.stem.weights, c.stem.weights);
  for (float w : a.cells[3].convs[2]->weights) {
    ASSERT_TRUE(std::isfinite(w));
    // uniform(+-sqrt(3/144)) times a folded BN scale below 1.5/sqrt(0.5)
    EXPECT_LT(std::abs(w), std::sqrt(3.0f / 144) * 2.2f);
  }
  EXPECT_EQ(MakeNb201Input(2, 7), MakeNb201Input(2, 7));
  EXPECT_EQ(MakeNb201Input(2, 7).size(), 2u * 3 * 32 * 32);
  EXPECT_NE(MakeNb201Input(1, 7), MakeNb201Input(1, 8));
}

}  // namespace
}  // namespace maplex::agent

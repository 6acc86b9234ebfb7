#include "agent/runtime/fbnet_network.h"

#include "gtest/gtest.h"
#include "tests/agent/runtime/runtime_test_util.h"

namespace maplex::agent {
namespace {

const core::FbnetSpace& Space() { return core::FbnetSpace::Get(); }

TEST(FbnetNetworkTest, FollowsTheMacroArchitecture) {
  // k3_e1_g2 at layer 2 (24 -> 24, stride 1), skip elsewhere.
  const FbnetNetwork net = BuildFbnetNetwork(FbnetWithOneBlock(2, 1), 7);
  ASSERT_EQ(net.layers.size(), 22u);
  EXPECT_EQ(net.stem.in_channels, 3);
  EXPECT_EQ(net.stem.out_channels, 16);
  EXPECT_EQ(net.stem.kernel, 3);
  EXPECT_EQ(net.head.in_channels, 352);
  EXPECT_EQ(net.head.out_channels, 1504);
  EXPECT_EQ(net.classifier_weights.size(), 100u * 1504);
  EXPECT_EQ(net.classifier_bias.size(), 100u);

  const FbnetLayerWeights& block = net.layers[2];
  EXPECT_TRUE(block.keeps_shape);
  ASSERT_TRUE(block.expand && block.depthwise && block.project);
  EXPECT_EQ(block.expand->groups, 2);
  EXPECT_EQ(block.expand->out_channels, 24);
  EXPECT_EQ(block.expand->weights.size(), 24u * 12);  // [24][24 / 2][1][1]
  EXPECT_EQ(block.depthwise->groups, 24);
  EXPECT_EQ(block.depthwise->kernel, 3);
  EXPECT_EQ(block.depthwise->weights.size(), 24u * 9);
  EXPECT_EQ(block.project->groups, 2);

  // Identity skips where the shape is kept (layer 0: 16 -> 16), projections elsewhere
  // (layer 1: 16 -> 24; layer 5: 24 -> 32 with stride 2).
  EXPECT_TRUE(net.layers[0].keeps_shape);
  EXPECT_FALSE(net.layers[0].project.has_value());
  ASSERT_TRUE(net.layers[1].project.has_value());
  EXPECT_FALSE(net.layers[1].expand.has_value());
  EXPECT_EQ(net.layers[1].project->stride, 1);
  ASSERT_TRUE(net.layers[5].project.has_value());
  EXPECT_EQ(net.layers[5].project->stride, 2);
  EXPECT_EQ(net.layers[5].project->out_channels, 32);
  EXPECT_FALSE(net.layers[5].keeps_shape);
}

TEST(FbnetNetworkTest, WorkAgreesWithTheSpacesCost) {
  // The network as built does exactly the multiply-accumulates core/arch counts.
  std::vector<core::Architecture> archs = Space().Sample(20, 3);
  archs.push_back(*Space().Parse(
      "k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-"
      "k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6-k5_e6"));
  for (int block = 0; block < core::kFbnetBlockCount; ++block) {
    archs.push_back(FbnetWithOneBlock(5, block));
  }
  for (const core::Architecture& a : archs) {
    EXPECT_EQ(FbnetNetworkMacs(BuildFbnetNetwork(a, 1)), Space().Cost(a).macs) << a.ToString();
  }
}

TEST(FbnetNetworkTest, WeightsAreDeterministicPerSeed) {
  const core::Architecture a = Space().Sample(1, 11)[0];
  const FbnetNetwork x = BuildFbnetNetwork(a, 5), y = BuildFbnetNetwork(a, 5);
  const FbnetNetwork z = BuildFbnetNetwork(a, 6);
  EXPECT_EQ(x.stem.weights, y.stem.weights);
  EXPECT_EQ(x.head.weights, y.head.weights);
  EXPECT_EQ(x.classifier_weights, y.classifier_weights);
  EXPECT_NE(x.stem.weights, z.stem.weights);
  EXPECT_NE(x.classifier_weights, z.classifier_weights);
}

}  // namespace
}  // namespace maplex::agent

#include "agent/runtime/onednn_runtime.h"

#include <cmath>

#include "agent/runtime/eigen_runtime.h"
#include "gtest/gtest.h"
#include "tests/agent/runtime/runtime_test_util.h"

namespace maplex::agent {
namespace {

TEST(OneDnnRuntimeTest, AgreesWithEigenOnTheSameWeights) {
  const std::array<int, 6> cells[] = {
      {3, 3, 3, 3, 3, 3},  // all conv3x3
      {0, 0, 0, 0, 0, 0},  // all none: the cells output zero
      {0, 1, 0, 0, 0, 3},  // a zero node feeding nothing but none
      {3, 0, 2, 0, 4, 1},  // none edges among every other op
      {4, 4, 4, 4, 4, 4},  // pools only
      {2, 1, 2, 1, 2, 1},
  };
  for (const std::array<int, 6>& codes : cells) {
    Nb201Cell cell = *core::Nb201Space::CellFromOpCodes(codes);
    EigenRuntime eigen;
    OneDnnRuntime onednn;
    std::vector<float> expected = RunOnce(eigen, cell, 2, 1);
    std::vector<float> actual = RunOnce(onednn, cell, 2, 1);
    ASSERT_EQ(actual.size(), 20u);
    ASSERT_EQ(expected.size(), 20u);
    for (float v : actual) ASSERT_TRUE(std::isfinite(v));
    EXPECT_LT(MaxRelativeError(actual, expected), 1e-3)
        << "cell " << codes[0] << codes[1] << codes[2] << codes[3] << codes[4] << codes[5];
  }
}

// Layer 2 keeps the shape (24 -> 24, stride 1: residual), layer 5 changes it (24 -> 32,
// stride 2); every other layer is skip.
TEST(OneDnnRuntimeTest, AgreesWithEigenOnEveryFbnetBlock) {
  for (int layer : {2, 5}) {
    EigenRuntime eigen_skip;
    const std::vector<float> all_skip =
        RunOnce(eigen_skip, FbnetWithOneBlock(layer, core::kFbnetSkip), 2, 1);
    for (int block = 0; block < core::kFbnetBlockCount; ++block) {
      const core::Architecture arch = FbnetWithOneBlock(layer, block);
      EigenRuntime eigen;
      OneDnnRuntime onednn;
      std::vector<float> expected = RunOnce(eigen, arch, 2, 1);
      std::vector<float> actual = RunOnce(onednn, arch, 2, 1);
      ASSERT_EQ(actual.size(), 200u);
      ASSERT_EQ(expected.size(), 200u);
      for (float v : actual) ASSERT_TRUE(std::isfinite(v));
      EXPECT_LT(MaxRelativeError(actual, expected), 1e-3)
          << core::FbnetSpace::BlockName(block) << " at layer " << layer;
      // The varied layer matters (it is not silently skipped).
      if (block != core::kFbnetSkip) {
        EXPECT_GT(MaxRelativeError(expected, all_skip), 1e-3)
            << core::FbnetSpace::BlockName(block) << " at layer " << layer;
      }
    }
  }
}

TEST(OneDnnRuntimeTest, AgreesWithEigenOnWholeFbnetNetworks) {
  std::vector<core::Architecture> archs = core::FbnetSpace::Get().Sample(3, 2026);
  archs.push_back(*core::FbnetSpace::Get().FromChoices(std::vector<int>(22, 7)));  // all k5_e6
  for (const core::Architecture& arch : archs) {
    EigenRuntime eigen;
    OneDnnRuntime onednn;
    std::vector<float> expected = RunOnce(eigen, arch, 1, 2);
    std::vector<float> actual = RunOnce(onednn, arch, 1, 2);
    ASSERT_EQ(actual.size(), 100u);
    EXPECT_LT(MaxRelativeError(actual, expected), 1e-3) << arch.ToString();
  }
}

TEST(OneDnnRuntimeTest, RefusesASpaceItCannotBuild) {
  ToySpace toy;
  OneDnnRuntime runtime;
  absl::Status status = runtime.Prepare(*toy.Parse("a"), 1, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("\"toy\""), std::string::npos) << status;
  EXPECT_EQ(runtime.Prepare(core::Architecture(), 1, 1).code(), absl::StatusCode::kInvalidArgument);
}

TEST(OneDnnRuntimeTest, TwoThreadsGiveTheSameLogits) {
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({3, 1, 4, 2, 0, 3});
  OneDnnRuntime one, two;
  EXPECT_LT(MaxRelativeError(RunOnce(two, cell, 1, 2), RunOnce(one, cell, 1, 1)), 1e-5);
}

TEST(OneDnnRuntimeTest, ContractErrors) {
  OneDnnRuntime runtime;
  EXPECT_EQ(runtime.name(), "onednn");
  EXPECT_EQ(runtime.Run().status().code(), absl::StatusCode::kFailedPrecondition);
  Nb201Cell cell = *core::Nb201Space::CellFromOpCodes({1, 1, 1, 1, 1, 1});
  EXPECT_EQ(runtime.Prepare(cell, 1, 0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(runtime.Prepare(cell, 1, 1).ok());
  EXPECT_EQ(runtime.Output().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace maplex::agent

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

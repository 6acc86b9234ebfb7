#include "agent/runtime/onednn_runtime.h"

#include <algorithm>
#include <cmath>

#include "agent/runtime/eigen_runtime.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

std::vector<float> Logits(Runtime& runtime, const Nb201Cell& cell, int batch, int threads) {
  absl::Status prepared = runtime.Prepare(cell, batch, threads);
  EXPECT_TRUE(prepared.ok()) << prepared;
  EXPECT_TRUE(runtime.Run().ok());
  absl::StatusOr<std::vector<float>> output = runtime.Output();
  EXPECT_TRUE(output.ok()) << output.status();
  return output.ok() ? *output : std::vector<float>();
}

// Largest absolute difference relative to the largest reference magnitude: logits near
// zero make an element-wise relative error meaningless.
double MaxRelativeError(const std::vector<float>& actual, const std::vector<float>& expected) {
  double scale = 0, error = 0;
  for (float v : expected) scale = std::max(scale, std::abs(double(v)));
  for (size_t i = 0; i < expected.size(); ++i) {
    error = std::max(error, std::abs(double(actual[i]) - expected[i]));
  }
  return error / std::max(scale, 1e-12);
}

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
    Nb201Cell cell = *Nb201Cell::FromOpCodes(codes);
    EigenRuntime eigen;
    OneDnnRuntime onednn;
    std::vector<float> expected = Logits(eigen, cell, 2, 1);
    std::vector<float> actual = Logits(onednn, cell, 2, 1);
    ASSERT_EQ(actual.size(), 20u);
    ASSERT_EQ(expected.size(), 20u);
    for (float v : actual) ASSERT_TRUE(std::isfinite(v));
    EXPECT_LT(MaxRelativeError(actual, expected), 1e-3)
        << "cell " << codes[0] << codes[1] << codes[2] << codes[3] << codes[4] << codes[5];
  }
}

TEST(OneDnnRuntimeTest, TwoThreadsGiveTheSameLogits) {
  Nb201Cell cell = *Nb201Cell::FromOpCodes({3, 1, 4, 2, 0, 3});
  OneDnnRuntime one, two;
  EXPECT_LT(MaxRelativeError(Logits(two, cell, 1, 2), Logits(one, cell, 1, 1)), 1e-5);
}

TEST(OneDnnRuntimeTest, ContractErrors) {
  OneDnnRuntime runtime;
  EXPECT_EQ(runtime.name(), "onednn");
  EXPECT_EQ(runtime.Run().status().code(), absl::StatusCode::kFailedPrecondition);
  Nb201Cell cell = *Nb201Cell::FromOpCodes({1, 1, 1, 1, 1, 1});
  EXPECT_EQ(runtime.Prepare(cell, 1, 0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(runtime.Prepare(cell, 1, 1).ok());
  EXPECT_EQ(runtime.Output().status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace maplex::agent

// Helpers shared by the runtime tests.
#ifndef MAPLEX_TESTS_AGENT_RUNTIME_RUNTIME_TEST_UTIL_H_
#define MAPLEX_TESTS_AGENT_RUNTIME_RUNTIME_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <vector>

#include "agent/runtime/runtime.h"
#include "gtest/gtest.h"

namespace maplex::agent {

// Prepares `runtime`, runs it once and returns its logits (empty, with a test failure,
// if any step fails).
inline std::vector<float> RunOnce(Runtime& runtime, const Nb201Cell& cell, int batch, int threads) {
  absl::Status prepared = runtime.Prepare(cell, batch, threads);
  EXPECT_TRUE(prepared.ok()) << prepared;
  EXPECT_TRUE(runtime.Run().ok());
  absl::StatusOr<std::vector<float>> output = runtime.Output();
  EXPECT_TRUE(output.ok()) << output.status();
  return output.ok() ? *output : std::vector<float>();
}

// Largest absolute difference relative to the largest reference magnitude: logits near
// zero make an element-wise relative error meaningless. Infinite on a size mismatch.
inline double MaxRelativeError(const std::vector<float>& actual,
                               const std::vector<float>& expected) {
  if (actual.size() != expected.size()) return INFINITY;
  double scale = 0, error = 0;
  for (float v : expected) scale = std::max(scale, std::abs(double(v)));
  for (size_t i = 0; i < expected.size(); ++i) {
    error = std::max(error, std::abs(double(actual[i]) - expected[i]));
  }
  return error / std::max(scale, 1e-12);
}

}  // namespace maplex::agent

#endif  // MAPLEX_TESTS_AGENT_RUNTIME_RUNTIME_TEST_UTIL_H_

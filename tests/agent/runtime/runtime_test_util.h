// Helpers shared by the runtime tests.
#ifndef MAPLEX_TESTS_AGENT_RUNTIME_RUNTIME_TEST_UTIL_H_
#define MAPLEX_TESTS_AGENT_RUNTIME_RUNTIME_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "agent/runtime/runtime.h"
#include "core/arch/fbnet_space.h"
#include "gtest/gtest.h"

namespace maplex::agent {

// Prepares `runtime` for `arch` (a core::Architecture or an Nb201Cell), runs it once and
// returns its logits (empty, with a test failure, if any step fails).
template <typename Arch>
std::vector<float> RunOnce(Runtime& runtime, const Arch& arch, int batch, int threads) {
  absl::Status prepared = runtime.Prepare(arch, batch, threads);
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

// A space no built-in runtime knows: one position with options "a" and "b".
class ToySpace final : public core::ArchitectureSpace {
 public:
  std::string_view name() const override { return "toy"; }
  int positions() const override { return 1; }
  int options(int) const override { return 2; }
  std::string_view OptionName(int, int option) const override { return option ? "b" : "a"; }
  absl::StatusOr<core::Architecture> Parse(std::string_view text) const override {
    if (text != "a" && text != "b") return absl::InvalidArgumentError("not a or b");
    return FromChoices({text == "b" ? 1 : 0});
  }
  std::string Format(const core::Architecture& a) const override {
    return std::string(OptionName(0, a.choice(0)));
  }
  bool IsOutputConnected(const core::Architecture&) const override { return true; }
  core::NetworkCost Cost(const core::Architecture&) const override { return {}; }
  int PrimitiveCount(const core::Architecture&) const override { return 1; }
};

// The FBNet architecture with `block` at `layer` and skip everywhere else.
inline core::Architecture FbnetWithOneBlock(int layer, int block) {
  std::vector<int> choices(core::kFbnetLayerCount, core::kFbnetSkip);
  choices[layer] = block;
  return *core::FbnetSpace::Get().FromChoices(choices);
}

}  // namespace maplex::agent

#endif  // MAPLEX_TESTS_AGENT_RUNTIME_RUNTIME_TEST_UTIL_H_

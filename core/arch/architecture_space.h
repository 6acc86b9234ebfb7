// Architectures as values, and the search spaces they belong to.
//
// An Architecture is its space and its choices (NB201: the op on each of 6 edges; FBNet: the
// block of each of 22 layers), held inline: copying or featurizing one allocates nothing, so a
// NAS loop can predict millions per second. Every Architecture a space hands out is valid in
// that space; the only way to make one is through the space (Parse, FromChoices, Sample).
//
// An ArchitectureSpace does not assume it is small or dense: it offers parsing and one
// canonical string form, structural features, analytic cost, primitive count,
// output-connectedness and seeded sampling. Spaces are found by name in the registry
// (space_registry.h).
//
//   const ArchitectureSpace& fbnet = FbnetSpace::Get();
//   absl::StatusOr<Architecture> a = fbnet.Parse("k5_e6-skip-k3_e1_g2-...");
//   NetworkCost cost = fbnet.Cost(*a);
//   std::vector<Architecture> pool = fbnet.Sample(1000, /*seed=*/7);
#ifndef MAPLEX_CORE_ARCH_ARCHITECTURE_SPACE_H_
#define MAPLEX_CORE_ARCH_ARCHITECTURE_SPACE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace maplex::core {

// Analytic cost of one whole network (not only its searchable part).
struct NetworkCost {
  // Multiply-accumulates of the convolution and linear layers. FLOPs = 2 * macs.
  // Elementwise work (BN, ReLU, pooling, sums) is not counted.
  int64_t macs = 0;
  int64_t parameters = 0;  // weights, biases and BN affine parameters
  // Elements of every feature map a forward pass writes (batch 1); bytes = 4x in fp32.
  int64_t activation_elements = 0;
};

class ArchitectureSpace;

// One architecture: 40 bytes, trivially copyable. Compares and hashes by (space, choices).
class Architecture {
 public:
  static constexpr int kMaxChoices = 24;

  // The empty architecture of no space (a placeholder; no space accepts it).
  Architecture() = default;

  const ArchitectureSpace* space() const { return space_; }
  int size() const { return size_; }
  int choice(int position) const { return choices_[position]; }
  absl::Span<const uint8_t> choices() const { return absl::MakeConstSpan(choices_.data(), size_); }
  // The canonical string (space()->Format(*this)); "" for the empty architecture.
  std::string ToString() const;

  friend bool operator==(const Architecture& a, const Architecture& b) {
    return a.space_ == b.space_ && a.size_ == b.size_ && a.choices_ == b.choices_;
  }
  friend bool operator!=(const Architecture& a, const Architecture& b) { return !(a == b); }
  friend bool operator<(const Architecture& a, const Architecture& b) {
    if (a.space_ != b.space_) return std::less<const void*>()(a.space_, b.space_);
    return a.choices_ < b.choices_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Architecture& a) {
    return H::combine(std::move(h), a.space_, a.size_, a.choices_);
  }

 private:
  friend class ArchitectureSpace;
  const ArchitectureSpace* space_ = nullptr;
  uint8_t size_ = 0;
  std::array<uint8_t, kMaxChoices> choices_{};  // unused tail stays zero (for ==, hashing)
};

class ArchitectureSpace {
 public:
  virtual ~ArchitectureSpace() = default;

  // The registry name ("nb201", "fbnet").
  virtual std::string_view name() const = 0;

  // Choice positions of every architecture (<= Architecture::kMaxChoices) and the options
  // at each position (<= 255); the options' names, as the canonical string spells them.
  virtual int positions() const = 0;
  virtual int options(int position) const = 0;
  virtual std::string_view OptionName(int position, int option) const = 0;

  // The architecture with these choices; InvalidArgument naming the position for a wrong
  // count or an option out of range.
  absl::StatusOr<Architecture> FromChoices(absl::Span<const int> choices) const;
  // The same without checks, for a hot path that validated a whole batch at once (e.g.
  // against a table of options()): `codes` must hold positions() entries, each below its
  // position's options().
  Architecture FromValidatedCodes(absl::Span<const uint8_t> codes) const {
    return MakeArchitecture(codes);
  }
  // The same for out.size() architectures of positions() codes each, back to back in
  // `codes` (codes.size() == out.size() * positions()), written in place: a large batch
  // decodes without a temporary per architecture.
  void FromValidatedCodes(absl::Span<const uint8_t> codes, absl::Span<Architecture> out) const;

  // Parses the canonical string (and any alias the space documents). InvalidArgument naming
  // the position and the offending token for anything else.
  virtual absl::StatusOr<Architecture> Parse(std::string_view text) const = 0;
  // The canonical string: Parse(Format(a)) == a. `a` must belong to this space.
  virtual std::string Format(const Architecture& a) const = 0;

  // False when the network's output does not depend on its input (its latency is then often
  // an artefact of the runtime); evaluation reports those apart.
  virtual bool IsOutputConnected(const Architecture& a) const = 0;
  virtual NetworkCost Cost(const Architecture& a) const = 0;
  // Operators a runtime dispatches for the network (each pays a fixed cost that can dominate
  // small batch-1 workloads).
  virtual int PrimitiveCount(const Architecture& a) const = 0;

  // Pairs of positions (i < j) whose choices interact in the network's latency beyond the
  // sum of their separate effects (NB201: every edge pair, since "none" and skip change the
  // graph; FBNet: none, its layers run one after another). Models add a joint one-hot term
  // for each pair.
  virtual std::vector<std::pair<int, int>> InteractingPositions() const { return {}; }

  // Structural features: a one-hot of the option at every position, position-major
  // (one_hot_dim() = sum of options(p)). Models build on these (core/model/function_model.h).
  int one_hot_dim() const;
  void OneHotFeatures(const Architecture& a, absl::Span<double> out) const;

  // `count` architectures drawn uniformly (each position independently), with replacement,
  // deterministic in `seed` on every platform (its own generator, not <random>'s
  // distributions). Spaces may override to draw from a narrower distribution.
  virtual std::vector<Architecture> Sample(int count, uint64_t seed) const;

 protected:
  // For spaces that validated the choices themselves.
  Architecture MakeArchitecture(absl::Span<const uint8_t> choices) const;
};

// splitmix64: the seeded generator behind Sample (portable, fast, good enough to sample).
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace maplex::core

#endif  // MAPLEX_CORE_ARCH_ARCHITECTURE_SPACE_H_

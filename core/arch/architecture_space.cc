#include "core/arch/architecture_space.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace maplex::core {

std::string Architecture::ToString() const {
  return space_ == nullptr ? "" : space_->Format(*this);
}

absl::StatusOr<Architecture> ArchitectureSpace::FromChoices(absl::Span<const int> choices) const {
  if (static_cast<int>(choices.size()) != positions()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name()), " architecture needs ",
                                                   positions(), " choices, got ", choices.size()));
  }
  std::array<uint8_t, Architecture::kMaxChoices> packed{};
  for (int p = 0; p < positions(); ++p) {
    if (choices[p] < 0 || choices[p] >= options(p)) {
      return absl::InvalidArgumentError(absl::StrCat(std::string(name()), " choice at position ", p,
                                                     " must be in 0..", options(p) - 1, ", got ",
                                                     choices[p]));
    }
    packed[p] = static_cast<uint8_t>(choices[p]);
  }
  return MakeArchitecture(absl::MakeConstSpan(packed.data(), positions()));
}

Architecture ArchitectureSpace::MakeArchitecture(absl::Span<const uint8_t> choices) const {
  Architecture a;
  a.space_ = this;
  a.size_ = static_cast<uint8_t>(choices.size());
  // One copy of the bytes (a large Predict decodes every architecture of its batch here).
  std::memcpy(a.choices_.data(), choices.data(), choices.size());
  return a;
}

int ArchitectureSpace::one_hot_dim() const {
  int dim = 0;
  for (int p = 0; p < positions(); ++p) dim += options(p);
  return dim;
}

void ArchitectureSpace::OneHotFeatures(const Architecture& a, absl::Span<double> out) const {
  for (double& v : out) v = 0;
  int offset = 0;
  for (int p = 0; p < positions(); ++p) {
    out[offset + a.choice(p)] = 1;
    offset += options(p);
  }
}

std::vector<Architecture> ArchitectureSpace::Sample(int count, uint64_t seed) const {
  std::vector<Architecture> out;
  out.reserve(count > 0 ? count : 0);
  uint64_t state = seed;
  std::array<uint8_t, Architecture::kMaxChoices> choices{};
  for (int i = 0; i < count; ++i) {
    for (int p = 0; p < positions(); ++p) {
      // Multiply-shift maps 32 random bits onto [0, options) without modulo bias worth noting.
      const uint64_t r = SplitMix64(state) >> 32;
      choices[p] = static_cast<uint8_t>((r * static_cast<uint64_t>(options(p))) >> 32);
    }
    out.push_back(MakeArchitecture(absl::MakeConstSpan(choices.data(), positions())));
  }
  return out;
}

}  // namespace maplex::core

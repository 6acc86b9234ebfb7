#include "core/arch/architecture_space.h"

#include <array>
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
  std::memcpy(a.choices_.data(), choices.data(), choices.size());
  return a;
}

void ArchitectureSpace::FromValidatedCodes(absl::Span<const uint8_t> codes,
                                           absl::Span<Architecture> out) const {
  constexpr size_t kMax = Architecture::kMaxChoices;
  const size_t n = static_cast<size_t>(positions());
  // Fixed-width copies (kMax bytes, the tail masked to zero) while kMax bytes remain in
  // `codes`: no library call per architecture; the last few take the exact-size path.
  static_assert(kMax % 8 == 0);
  constexpr size_t kWords = kMax / 8;
  std::array<uint8_t, kMax> keep_bytes{};
  for (size_t k = 0; k < n; ++k) keep_bytes[k] = 0xff;
  std::array<uint64_t, kWords> keep;
  std::memcpy(keep.data(), keep_bytes.data(), kMax);
  size_t i = 0;
  for (; i < out.size() && codes.size() - i * n >= kMax; ++i) {
    Architecture& a = out[i];
    a.space_ = this;
    a.size_ = static_cast<uint8_t>(n);
    std::array<uint64_t, kWords> words;
    std::memcpy(words.data(), codes.data() + i * n, kMax);
    for (size_t w = 0; w < kWords; ++w) words[w] &= keep[w];
    std::memcpy(a.choices_.data(), words.data(), kMax);
  }
  for (; i < out.size(); ++i) out[i] = MakeArchitecture(codes.subspan(i * n, n));
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

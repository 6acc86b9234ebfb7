#include "core/arch/packed_choices.h"

#include <cstring>

namespace maplex::core {

namespace {

constexpr uint64_t kLowNibbles = 0x0f0f0f0f0f0f0f0full;

// Eight codes from four packed bytes (b0 | b1 << 8 | ...): code k, nibble k of `x`, goes to
// byte k of the result, by spreading the halves apart three times (16, 8, then 4 bits).
inline uint64_t SpreadNibbles(uint32_t x) {
  uint64_t z = x;
  z = (z | (z << 16)) & 0x0000ffff0000ffffull;
  z = (z | (z << 8)) & 0x00ff00ff00ff00ffull;
  z = (z | (z << 4)) & kLowNibbles;
  return z;
}

}  // namespace

bool FitsChoiceNibbles(std::string_view codes) {
  uint8_t any = 0;
  for (char c : codes) any |= static_cast<uint8_t>(c);
  return any < 16;
}

std::string PackChoiceNibbles(std::string_view codes) {
  std::string packed(PackedChoiceBytes(codes.size()), '\0');
  const size_t pairs = codes.size() / 2;
  for (size_t k = 0; k < pairs; ++k) {
    packed[k] = static_cast<char>(static_cast<uint8_t>(codes[2 * k]) |
                                  (static_cast<uint8_t>(codes[2 * k + 1]) << 4));
  }
  if (codes.size() % 2 == 1) packed[pairs] = codes.back();
  return packed;
}

void UnpackChoiceNibbles(const uint8_t* packed, size_t first, size_t count, uint8_t* out) {
  size_t j = first;
  const size_t end = first + count;
  if (j < end && j % 2 == 1) *out++ = ChoiceNibbleAt(packed, j++);
  // Whole bytes from here: eight codes per four bytes, assembled and stored byte by byte so
  // the order does not depend on the machine's (the compiler folds them to one load/store
  // on a little-endian machine).
  const uint8_t* p = packed + j / 2;
  for (; j + 8 <= end; j += 8, p += 4, out += 8) {
    const uint32_t x = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                       static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
    const uint64_t z = SpreadNibbles(x);
    for (int b = 0; b < 8; ++b) out[b] = static_cast<uint8_t>(z >> (8 * b));
  }
  for (; j < end; ++j) *out++ = ChoiceNibbleAt(packed, j);
}

bool AnyChoiceNibbleAtLeast(const uint8_t* packed, size_t bytes, uint8_t limit) {
  // Each nibble widened to a byte below 16; adding 128 - limit sets that byte's high bit
  // exactly when the nibble is >= limit, without a carry into the next byte.
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t add = kOnes * static_cast<uint64_t>(128 - limit);
  uint64_t flags = 0;
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t word;
    std::memcpy(&word, packed + i, 8);
    flags |= ((word & kLowNibbles) + add) | (((word >> 4) & kLowNibbles) + add);
  }
  if ((flags & kHigh) != 0) return true;
  for (; i < bytes; ++i) {
    if ((packed[i] & 0x0f) >= limit || (packed[i] >> 4) >= limit) return true;
  }
  return false;
}

}  // namespace maplex::core

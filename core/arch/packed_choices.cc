#include "core/arch/packed_choices.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace maplex::core {

namespace {

constexpr uint64_t kLowNibbles = 0x0f0f0f0f0f0f0f0full;
constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

// Eight codes from four packed bytes (b0 | b1 << 8 | ...): code k, nibble k of `x`, goes to
// byte k of the result, by spreading the halves apart three times (16, 8, then 4 bits).
inline uint64_t SpreadNibbles(uint32_t x) {
  uint64_t z = x;
  z = (z | (z << 16)) & 0x0000ffff0000ffffull;
  z = (z | (z << 8)) & 0x00ff00ff00ff00ffull;
  z = (z | (z << 4)) & kLowNibbles;
  return z;
}

// The inverse: codes k of the eight bytes of `z` (each < 16) as nibble k of the result.
inline uint32_t GatherNibbles(uint64_t z) {
  z = (z | (z >> 4)) & 0x00ff00ff00ff00ffull;
  z = (z | (z >> 8)) & 0x0000ffff0000ffffull;
  z = (z | (z >> 16)) & 0x00000000ffffffffull;
  return static_cast<uint32_t>(z);
}

// Little-endian loads and stores: one instruction on such a machine, bytes otherwise.
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v = 0;
  if constexpr (kLittleEndian) {
    std::memcpy(&v, p, 8);
  } else {
    for (int b = 0; b < 8; ++b) v |= static_cast<uint64_t>(p[b]) << (8 * b);
  }
  return v;
}
inline uint32_t Load32(const uint8_t* p) {
  uint32_t v = 0;
  if constexpr (kLittleEndian) {
    std::memcpy(&v, p, 4);
  } else {
    for (int b = 0; b < 4; ++b) v |= static_cast<uint32_t>(p[b]) << (8 * b);
  }
  return v;
}
inline void Store64(uint8_t* p, uint64_t v) {
  if constexpr (kLittleEndian) {
    std::memcpy(p, &v, 8);
  } else {
    for (int b = 0; b < 8; ++b) p[b] = static_cast<uint8_t>(v >> (8 * b));
  }
}
inline void Store32(uint8_t* p, uint32_t v) {
  if constexpr (kLittleEndian) {
    std::memcpy(p, &v, 4);
  } else {
    for (int b = 0; b < 4; ++b) p[b] = static_cast<uint8_t>(v >> (8 * b));
  }
}

}  // namespace

bool FitsChoiceNibbles(std::string_view codes) {
  uint8_t any = 0;
  for (char c : codes) any |= static_cast<uint8_t>(c);
  return any < 16;
}

std::string PackChoiceNibbles(std::string_view codes) {
  std::string packed(PackedChoiceBytes(codes.size()), '\0');
  const auto* in = reinterpret_cast<const uint8_t*>(codes.data());
  auto* out = reinterpret_cast<uint8_t*>(packed.data());
  size_t j = 0;
  for (; j + 8 <= codes.size(); j += 8) Store32(out + j / 2, GatherNibbles(Load64(in + j)));
  for (; j < codes.size(); ++j) out[j / 2] |= static_cast<uint8_t>(in[j] << (4 * (j % 2)));
  return packed;
}

void UnpackChoiceNibbles(const uint8_t* packed, size_t first, size_t count, uint8_t* out) {
  size_t j = first;
  const size_t end = first + count;
  if (j < end && j % 2 == 1) *out++ = ChoiceNibbleAt(packed, j++);
  // Whole bytes from here.
  const uint8_t* p = packed + j / 2;
#if defined(__SSE2__)
  // 32 codes per 16 bytes: the low and the high nibbles, interleaved byte by byte.
  const __m128i mask = _mm_set1_epi8(0x0f);
  for (; j + 32 <= end; j += 32, p += 16, out += 32) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i low = _mm_and_si128(v, mask);
    const __m128i high = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi8(low, high));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_unpackhi_epi8(low, high));
  }
#endif
  for (; j + 8 <= end; j += 8, p += 4, out += 8) Store64(out, SpreadNibbles(Load32(p)));
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

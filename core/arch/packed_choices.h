// Choice codes packed two to a byte (maplex.v1.ArchitectureBatch with bits_per_choice = 4):
// a 100,000-architecture FBNet batch is 1.1 MB instead of 2.2 MB on the wire. Codes are
// numbered across the whole batch (architecture after architecture, position after
// position); code j sits in byte j / 2, in the low nibble when j is even, in the high nibble
// when j is odd. An odd number of codes leaves the last byte's high nibble zero.
//
//   std::string packed = PackChoiceNibbles(codes);          // every code < 16
//   UnpackChoiceNibbles(packed_bytes, 0, codes.size(), out);  // out == codes again
//
// No dependencies: the client library packs with it, the server unpacks.
#ifndef MAPLEX_CORE_ARCH_PACKED_CHOICES_H_
#define MAPLEX_CORE_ARCH_PACKED_CHOICES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace maplex::core {

// Bytes that hold `count` codes packed two to a byte.
inline size_t PackedChoiceBytes(size_t count) { return (count + 1) / 2; }

// True when every byte of `codes` is below 16, i.e. fits a nibble.
bool FitsChoiceNibbles(std::string_view codes);

// `codes` (one byte each, every one < 16: FitsChoiceNibbles) packed two to a byte.
std::string PackChoiceNibbles(std::string_view codes);

// Codes [first, first + count) of `packed` written one per byte to out[0, count). `packed`
// must hold them (PackedChoiceBytes(first + count) bytes at least).
void UnpackChoiceNibbles(const uint8_t* packed, size_t first, size_t count, uint8_t* out);

// Code j of `packed`.
inline uint8_t ChoiceNibbleAt(const uint8_t* packed, size_t j) {
  return static_cast<uint8_t>((packed[j / 2] >> (4 * (j % 2))) & 0x0f);
}

// True when some code of packed[0, bytes) (both nibbles of every byte) is >= limit,
// 1 <= limit <= 16. Eight bytes (sixteen codes) at a time.
bool AnyChoiceNibbleAtLeast(const uint8_t* packed, size_t bytes, uint8_t limit);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_ARCH_PACKED_CHOICES_H_

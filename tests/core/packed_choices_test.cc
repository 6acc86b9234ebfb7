#include "core/arch/packed_choices.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace maplex::core {
namespace {

// Codes 0..15 in a pattern with no period of 2, 4 or 8 (a swapped nibble or byte shows).
std::string Codes(size_t n) {
  std::string codes(n, 0);
  for (size_t j = 0; j < n; ++j) codes[j] = static_cast<char>((j * 7 + j / 3) % 16);
  return codes;
}

TEST(PackedChoicesTest, LowNibbleFirstAndZeroPadding) {
  EXPECT_EQ(PackChoiceNibbles(std::string{1, 2, 3, 4, 5}), (std::string{0x21, 0x43, 0x05}));
  // Sixteen codes take the eight-at-a-time path.
  std::string sixteen(16, 0);
  for (int j = 0; j < 16; ++j) sixteen[j] = static_cast<char>(j);
  EXPECT_EQ(PackChoiceNibbles(sixteen), "\x10\x32\x54\x76\x98\xba\xdc\xfe");
  EXPECT_EQ(PackedChoiceBytes(5), 3u);
  EXPECT_EQ(PackedChoiceBytes(22), 11u);
  const std::string packed = {0x21, 0x43, 0x05};
  const auto* p = reinterpret_cast<const uint8_t*>(packed.data());
  EXPECT_EQ(ChoiceNibbleAt(p, 0), 1);
  EXPECT_EQ(ChoiceNibbleAt(p, 3), 4);
  EXPECT_EQ(ChoiceNibbleAt(p, 5), 0);
}

TEST(PackedChoicesTest, UnpackingAnyRangeGivesTheCodesBack) {
  const std::string codes = Codes(77);
  const std::string packed = PackChoiceNibbles(codes);
  ASSERT_EQ(packed.size(), 39u);
  const auto* p = reinterpret_cast<const uint8_t*>(packed.data());
  // Every start (even and odd) and every length, across the eight-at-a-time path and its tail.
  for (size_t first = 0; first < codes.size(); ++first) {
    for (size_t count = 0; first + count <= codes.size(); ++count) {
      std::vector<uint8_t> out(count + 1, 0xee);
      UnpackChoiceNibbles(p, first, count, out.data());
      for (size_t k = 0; k < count; ++k) {
        ASSERT_EQ(out[k], static_cast<uint8_t>(codes[first + k])) << first << " " << count;
      }
      ASSERT_EQ(out[count], 0xee) << "wrote past the range";
    }
  }
}

TEST(PackedChoicesTest, FitsOnlyCodesBelowSixteen) {
  EXPECT_TRUE(FitsChoiceNibbles(Codes(100)));
  std::string codes = Codes(100);
  codes[63] = 16;
  EXPECT_FALSE(FitsChoiceNibbles(codes));
  codes[63] = static_cast<char>(0x80);
  EXPECT_FALSE(FitsChoiceNibbles(codes));
}

TEST(PackedChoicesTest, FindsACodeAtOrAboveTheLimitInEitherNibbleAnywhere) {
  // 21 bytes: two words and a five-byte tail.
  for (uint8_t limit : {1, 5, 9, 16}) {
    const std::string clean(42, 0);
    const std::string packed_clean = PackChoiceNibbles(clean);
    EXPECT_FALSE(AnyChoiceNibbleAtLeast(reinterpret_cast<const uint8_t*>(packed_clean.data()),
                                        packed_clean.size(), limit));
    if (limit == 16) continue;
    for (size_t j = 0; j < clean.size(); ++j) {
      for (int code : {static_cast<int>(limit), 15}) {
        std::string codes(42, static_cast<char>(limit - 1));
        codes[j] = static_cast<char>(code);
        const std::string packed = PackChoiceNibbles(codes);
        EXPECT_TRUE(AnyChoiceNibbleAtLeast(reinterpret_cast<const uint8_t*>(packed.data()),
                                           packed.size(), limit))
            << "limit " << int{limit} << " code " << code << " at " << j;
      }
      std::string below(42, static_cast<char>(limit - 1));
      const std::string packed_below = PackChoiceNibbles(below);
      EXPECT_FALSE(AnyChoiceNibbleAtLeast(reinterpret_cast<const uint8_t*>(packed_below.data()),
                                          packed_below.size(), limit));
    }
  }
}

}  // namespace
}  // namespace maplex::core

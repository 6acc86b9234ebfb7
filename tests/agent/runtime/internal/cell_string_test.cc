#include "agent/runtime/internal/cell_string.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent::runtime_internal {
namespace {

using ::testing::HasSubstr;

TEST(CellStringTest, RoundTripsEveryOpOnEveryEdge) {
  for (int op = 0; op < 5; ++op) {
    for (int edge = 0; edge < 6; ++edge) {
      std::array<int, 6> codes = {0, 1, 2, 3, 4, 0};
      codes[edge] = op;
      Nb201Cell cell = *Nb201Cell::FromOpCodes(codes);
      absl::StatusOr<Nb201Cell> parsed = ParseNb201CellString(Nb201CellString(cell));
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_EQ(*parsed, cell);
    }
  }
}

TEST(CellStringTest, WritesTheNb201Form) {
  Nb201Cell cell = *Nb201Cell::FromOpCodes({3, 0, 1, 2, 4, 3});
  EXPECT_EQ(Nb201CellString(cell),
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|"
            "nor_conv_3x3~2|");
}

TEST(CellStringTest, RejectsMalformedStrings) {
  EXPECT_THAT(ParseNb201CellString("|none~0|+|none~0|none~1|").status().message(),
              HasSubstr("3 '+'-separated"));
  EXPECT_THAT(
      ParseNb201CellString("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|").status().message(),
      HasSubstr("unknown op"));
  EXPECT_THAT(
      ParseNb201CellString("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|").status().message(),
      HasSubstr("must be op~0"));
  EXPECT_FALSE(ParseNb201CellString("|none~0|+|none~0|+|none~0|none~1|none~2|").ok());
  EXPECT_FALSE(ParseNb201CellString("none~0+|none~0|none~1|+|none~0|none~1|none~2|").ok());
}

}  // namespace
}  // namespace maplex::agent::runtime_internal

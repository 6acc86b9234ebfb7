#include "core/arch/nb201_space.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

using ::testing::HasSubstr;

TEST(Nb201SpaceTest, EveryIndexRoundTripsThroughItsString) {
  const Nb201Space& space = Nb201Space::Get();
  std::set<std::string> seen;
  for (int32_t i = 0; i < space.size(); ++i) {
    absl::StatusOr<std::string> text = space.ArchString(i);
    ASSERT_TRUE(text.ok()) << i;
    absl::StatusOr<int32_t> back = space.IndexOf(*text);
    ASSERT_TRUE(back.ok()) << *text << ": " << back.status();
    ASSERT_EQ(*back, i) << *text;
    seen.insert(*text);
  }
  EXPECT_EQ(seen.size(), 15625u);
}

TEST(Nb201SpaceTest, IndexOrderIsTheOfficialOneFromTheCsv) {
  // The compiled-in table must agree with data/ (tests run from the source tree).
  std::ifstream csv("data/nb201_arch_index.csv");
  ASSERT_TRUE(csv.good());
  std::string line;
  std::getline(csv, line);
  int rows = 0;
  const Nb201Space& space = Nb201Space::Get();
  while (std::getline(csv, line)) {
    std::stringstream fields(line);
    std::string index, arch;
    std::getline(fields, index, ',');
    std::getline(fields, arch, ',');
    ASSERT_EQ(*space.ArchString(std::stoi(index)), arch);
    ++rows;
  }
  EXPECT_EQ(rows, 15625);
  // Not base-5 order: index 0 is not all-"none".
  EXPECT_NE(Nb201Space::CellCode(space.CellAt(0)), 0);
}

TEST(Nb201SpaceTest, MalformedStringsAreRejectedNamingTheFault) {
  const Nb201Space& space = Nb201Space::Get();
  struct Case {
    const char* text;
    const char* fault;
  };
  const Case cases[] = {
      {"", "expected '|'"},
      {"|none~0|+|none~0|none~1|+|none~0|none~1|conv~2|", "unknown op \"conv\""},
      {"|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "must come from node 1"},
      {"|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 edges"},
      {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|x", "trailing characters"},
      {"|none~0||none~0|none~1|+|none~0|none~1|none~2|", "expected '+'"},
      {"|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "without '~source'"},
      {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2", "unterminated"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int32_t> r = space.IndexOf(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.fault)) << c.text;
  }
  EXPECT_FALSE(space.ArchString(-1).ok());
  EXPECT_FALSE(space.ArchString(15625).ok());
}

TEST(Nb201SpaceTest, ExactlyThreeHundredFortyOneCellsAreDisconnected) {
  const Nb201Space& space = Nb201Space::Get();
  int disconnected = 0;
  for (int32_t i = 0; i < space.size(); ++i) disconnected += space.IsOutputConnected(i) ? 0 : 1;
  EXPECT_EQ(disconnected, 341);
  // Only 1<-0 and 3<-1 survive: a path 0 -> 1 -> 3.
  EXPECT_TRUE(Nb201Space::CellOutputConnected(
      *Nb201Space::ParseCell("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")));
  // 2<-1 exists but nothing reaches 1; 3 hangs off 2 only.
  EXPECT_FALSE(Nb201Space::CellOutputConnected(
      *Nb201Space::ParseCell("|none~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")));
}

absl::StatusOr<NetworkCost> CostOf(const char* cell) {
  absl::StatusOr<int32_t> i = Nb201Space::Get().IndexOf(cell);
  if (!i.ok()) return i.status();
  return Nb201Space::Get().Cost(*i);
}

TEST(Nb201SpaceTest, CostsMatchHandArithmetic) {
  // Fixed part of the network, in MACs:
  //   stem 3x3 conv 3->16 on 32x32:             32*32*16*3*9          =   442,368
  //   reduction 16->32 to 16x16: conv_a 16*16*32*16*9 = 1,179,648; conv_b 16*16*32*32*9 =
  //     2,359,296; shortcut 1x1 16*16*16*32 = 131,072                  = 3,670,016
  //   reduction 32->64 to 8x8: 8*8*64*32*9 + 8*8*64*64*9 + 8*8*32*64   = 3,670,016
  //   classifier 64*10                                                 =       640
  //   total                                                             = 7,783,040
  const int64_t fixed = 442368 + 3670016 + 3670016 + 640;
  ASSERT_EQ(fixed, 7783040);
  auto none = CostOf("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->macs, 7783040);
  // One 1x1 edge per cell: H*W*C*C = 32*32*16*16 = 16*16*32*32 = 8*8*64*64 = 262,144 per
  // cell, 15 cells -> 3,932,160.
  auto one_1x1 = CostOf("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|");
  EXPECT_EQ(one_1x1->macs, 7783040 + 3932160);
  // All six edges 3x3: 6 * 15 * 9 * 262,144 = 212,336,640 -> 220,119,680 MACs, the
  // 220.1 M "FLOPs" NAS-Bench-201 lists for its largest cell (it counts MACs).
  auto all_3x3 = CostOf(
      "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
      "nor_conv_3x3~2|");
  EXPECT_EQ(all_3x3->macs, 220119680);
  // Parameters of the all-3x3 network: fixed 464 (stem) + 14,464 + 57,600 (reductions) +
  // 128 (last BN) + 650 (classifier) = 73,306; per 3x3 edge position 5 cells *
  // (9*16^2+32 + 9*32^2+64 + 9*64^2+128) = 5 * 48,608 = 243,040; 73,306 + 6 * 243,040 =
  // 1,531,546 (NAS-Bench-201: 1.53 M).
  EXPECT_EQ(all_3x3->parameters, 1531546);
  EXPECT_EQ(none->parameters, 73306);
  // Pooling and skips cost no MACs.
  auto pools =
      CostOf("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|");
  EXPECT_EQ(pools->macs, 7783040);
  EXPECT_GT(pools->activation_elements, none->activation_elements);
}

TEST(Nb201SpaceTest, FeaturesAreOneHotPerEdgeWithCounts) {
  const Nb201Space& space = Nb201Space::Get();
  absl::StatusOr<int32_t> i = space.IndexOf(
      "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|");
  ASSERT_TRUE(i.ok());
  std::vector<double> f(space.feature_dim());
  space.Features(*i, absl::MakeSpan(f));
  EXPECT_EQ(f[0 * 5 + 3], 1);  // edge 1<-0 is 3x3
  EXPECT_EQ(f[1 * 5 + 0], 1);  // edge 2<-0 is none
  EXPECT_EQ(f[30 + 0], 2);     // two "none"
  EXPECT_EQ(f[30 + 3], 1);
  double one_hot_sum = 0;
  for (int j = 0; j < 30; ++j) one_hot_sum += f[j];
  EXPECT_EQ(one_hot_sum, 6);
  EXPECT_EQ(f[38], 1);  // connected
}

TEST(Nb201SpaceTest, EdgeOrderIsTheNb201One) {
  // (1<-0) (2<-0) (2<-1) (3<-0) (3<-1) (3<-2)
  EXPECT_EQ(Nb201EdgeIndex(1, 0), 0);
  EXPECT_EQ(Nb201EdgeIndex(2, 0), 1);
  EXPECT_EQ(Nb201EdgeIndex(2, 1), 2);
  EXPECT_EQ(Nb201EdgeIndex(3, 0), 3);
  EXPECT_EQ(Nb201EdgeIndex(3, 1), 4);
  EXPECT_EQ(Nb201EdgeIndex(3, 2), 5);
  Nb201Cell cell = *Nb201Space::CellFromOpCodes({0, 1, 2, 3, 4, 0});
  EXPECT_EQ(Nb201EdgeOp(cell, 2, 1), Nb201Op::kNorConv1x1);
  EXPECT_EQ(Nb201EdgeOp(cell, 3, 1), Nb201Op::kAvgPool3x3);
}

TEST(Nb201SpaceTest, RejectsCodesOutOfRange) {
  EXPECT_FALSE(Nb201Space::CellFromOpCodes({0, 0, 0, 0, 0, 5}).ok());
  EXPECT_FALSE(Nb201Space::CellFromOpCodes({-1, 0, 0, 0, 0, 0}).ok());
}

}  // namespace
}  // namespace maplex::core

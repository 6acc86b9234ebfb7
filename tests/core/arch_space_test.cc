// Architectures as values: FBNet and NB201 parsing, canonical strings, the registry, one-hot
// features, seeded sampling and FBNet's analytic cost against hand-computed networks.
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_join.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "core/arch/space_registry.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

std::string Repeat(const std::string& block, int n = kFbnetLayerCount) {
  return absl::StrJoin(std::vector<std::string>(n, block), "-");
}

constexpr const char* kMixed =
    "k5_e6-skip-k3_e1_g2-k3_e1-k3_e3-k3_e6-k5_e1-k5_e1_g2-k5_e3-k5_e6-skip-"
    "k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-k3_e1-skip";

TEST(FbnetSpace, ParsesAndFormatsCanonically) {
  const FbnetSpace& space = FbnetSpace::Get();
  absl::StatusOr<Architecture> a = space.Parse(kMixed);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->space(), &space);
  EXPECT_EQ(a->size(), 22);
  EXPECT_EQ(a->choice(0), 7);  // k5_e6
  EXPECT_EQ(a->choice(1), 8);  // skip
  EXPECT_EQ(a->choice(2), 1);  // k3_e1_g2
  EXPECT_EQ(a->choice(7), 5);  // k5_e1_g2
  EXPECT_EQ(a->ToString(), kMixed);
  for (int b = 0; b < kFbnetBlockCount; ++b) {
    absl::StatusOr<Architecture> same = space.Parse(Repeat(FbnetSpace::BlockName(b)));
    ASSERT_TRUE(same.ok()) << same.status();
    for (int l = 0; l < kFbnetLayerCount; ++l) EXPECT_EQ(same->choice(l), b);
  }
}

TEST(FbnetSpace, RejectsMalformedNamingPositionAndToken) {
  const FbnetSpace& space = FbnetSpace::Get();
  struct Case {
    std::string text;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"", "missing layer at layer 1"},
      {Repeat("skip", 21), "only 21 layers; missing layer at layer 22"},
      {Repeat("skip", 23), "more than 22 layers; extra at layer 23 (character 110) \"skip\""},
      {Repeat("skip") + "-", "more than 22 layers"},
      {"skip-k3_e2-" + Repeat("skip", 20), "unknown block at layer 2 (character 5) \"k3_e2\""},
      {"skip--" + Repeat("skip", 20), "empty token at layer 2"},
      {"skip_" + Repeat("skip", 21), "unknown block at layer 1"},
      {"skip," + Repeat("skip", 21), "bad separator or character at layer 1"},
      {"SKIP-" + Repeat("skip", 21), "unknown block at layer 1"},
      {" skip-" + Repeat("skip", 21), "bad separator or character at layer 1"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Architecture> a = space.Parse(c.text);
    ASSERT_FALSE(a.ok()) << c.text;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find(c.expect), std::string_view::npos)
        << c.text << " -> " << a.status().message();
  }
}

TEST(FbnetSpace, MacroArchitectureLayers) {
  // Stage firsts: (c_in, c_out, stride, side_in).
  const FbnetLayer l1 = FbnetSpace::Layer(1), l5 = FbnetSpace::Layer(5),
                   l21 = FbnetSpace::Layer(21), l20 = FbnetSpace::Layer(20);
  EXPECT_EQ(l1.c_in, 16);
  EXPECT_EQ(l1.c_out, 24);
  EXPECT_EQ(l1.stride, 1);
  EXPECT_EQ(l1.side_in, 32);
  EXPECT_EQ(l5.c_in, 24);
  EXPECT_EQ(l5.c_out, 32);
  EXPECT_EQ(l5.stride, 2);
  EXPECT_EQ(l5.side_in, 32);
  EXPECT_EQ(l20.c_in, 184);
  EXPECT_EQ(l20.side_in, 4);
  EXPECT_EQ(l21.c_in, 184);
  EXPECT_EQ(l21.c_out, 352);
  EXPECT_EQ(l21.stride, 1);
}

// Stem (3x3 conv 3->16 on 32x32, BN, ReLU) and head (1x1 conv 352->1504 on 4x4, BN, ReLU,
// pool, linear 1504->100) are the same in every network.
constexpr int64_t kStemMacs = 32 * 32 * 16 * 3 * 9;
constexpr int64_t kStemParams = 3 * 16 * 9 + 2 * 16;
constexpr int64_t kStemActs = 3 * 16 * 32 * 32;
constexpr int64_t kHeadMacs = 4 * 4 * 352 * 1504 + 1504 * 100;
constexpr int64_t kHeadParams = 352 * 1504 + 2 * 1504 + 1504 * 100 + 100;
constexpr int64_t kHeadActs = 3 * 1504 * 16 + 1504 + 100;

// All-skip: identity wherever the shape is kept; the six shape-changing layers (first of
// stages 2..7) are 1x1 convs (with stride) + BN. Per layer: macs = side_out^2 * c_in * c_out,
// params = c_in * c_out + 2 * c_out, activations = 2 * c_out * side_out^2.
constexpr int64_t kSkipMacs = 32 * 32 * 16 * 24     // L1: 16->24, 32x32
                              + 16 * 16 * 24 * 32   // L5: 24->32, stride 2 -> 16x16
                              + 8 * 8 * 32 * 64     // L9: 32->64, stride 2 -> 8x8
                              + 8 * 8 * 64 * 112    // L13: 64->112, 8x8
                              + 4 * 4 * 112 * 184   // L17: 112->184, stride 2 -> 4x4
                              + 4 * 4 * 184 * 352;  // L21: 184->352, 4x4
constexpr int64_t kSkipParams = (16 * 24 + 48) + (24 * 32 + 64) + (32 * 64 + 128) +
                                (64 * 112 + 224) + (112 * 184 + 368) + (184 * 352 + 704);
constexpr int64_t kSkipActs =
    2 * 24 * 1024 + 2 * 32 * 256 + 2 * 64 * 64 + 2 * 112 * 64 + 2 * 184 * 16 + 2 * 352 * 16;

TEST(FbnetSpace, CostOfAllSkipByHand) {
  const NetworkCost c = FbnetSpace::Get().Cost(*FbnetSpace::Get().Parse(Repeat("skip")));
  // 393,216 + 196,608 + 131,072 + 458,752 + 329,728 + 1,036,288 = 2,545,664 in the layers.
  EXPECT_EQ(kSkipMacs, 2545664);
  EXPECT_EQ(c.macs, kStemMacs + kSkipMacs + kHeadMacs);
  EXPECT_EQ(c.parameters, kStemParams + kSkipParams + kHeadParams);
  EXPECT_EQ(c.activation_elements, kStemActs + kSkipActs + kHeadActs);
  // stem, head conv, pool, linear + six projecting skips.
  EXPECT_EQ(FbnetSpace::Get().PrimitiveCount(*FbnetSpace::Get().Parse(Repeat("skip"))), 4 + 6);
}

TEST(FbnetSpace, CostOfAllK3E1ByHand) {
  // k3_e1 on (c_in, c_out, stride, side): expand 1x1 c_in->c_in at side^2, depthwise 3x3 at
  // side_out^2, project 1x1 c_in->c_out at side_out^2.
  // macs = side^2*c_in*c_in + side_out^2*c_in*9 + side_out^2*c_in*c_out
  // params = (c_in^2 + 2c_in) + (9c_in + 2c_in) + (c_in*c_out + 2c_out)
  const int64_t macs = (1024 * 16 * 16 + 1024 * 16 * 9 + 1024 * 16 * 16)        // L0 16->16 @32
                       + (1024 * 16 * 16 + 1024 * 16 * 9 + 1024 * 16 * 24)      // L1 16->24 @32
                       + 3 * (1024 * 24 * 24 + 1024 * 24 * 9 + 1024 * 24 * 24)  // L2-4 24->24 @32
                       + (1024 * 24 * 24 + 256 * 24 * 9 + 256 * 24 * 32)        // L5 24->32 @32 s2
                       + 3 * (256 * 32 * 32 + 256 * 32 * 9 + 256 * 32 * 32)     // L6-8 32->32 @16
                       + (256 * 32 * 32 + 64 * 32 * 9 + 64 * 32 * 64)           // L9 32->64 @16 s2
                       + 3 * (64 * 64 * 64 + 64 * 64 * 9 + 64 * 64 * 64)        // L10-12 64->64 @8
                       + (64 * 64 * 64 + 64 * 64 * 9 + 64 * 64 * 112)           // L13 64->112 @8
                       + 3 * (64 * 112 * 112 + 64 * 112 * 9 + 64 * 112 * 112)   // L14-16 @8
                       + (64 * 112 * 112 + 16 * 112 * 9 + 16 * 112 * 184)      // L17 112->184 @8 s2
                       + 3 * (16 * 184 * 184 + 16 * 184 * 9 + 16 * 184 * 184)  // L18-20 @4
                       + (16 * 184 * 184 + 16 * 184 * 9 + 16 * 184 * 352);     // L21 184->352 @4
  auto params = [](int64_t ci, int64_t co) {
    return (ci * ci + 2 * ci) + (9 * ci + 2 * ci) + (ci * co + 2 * co);
  };
  const int64_t parameters = params(16, 16) + params(16, 24) + 3 * params(24, 24) + params(24, 32) +
                             3 * params(32, 32) + params(32, 64) + 3 * params(64, 64) +
                             params(64, 112) + 3 * params(112, 112) + params(112, 184) +
                             3 * params(184, 184) + params(184, 352);
  const Architecture a = *FbnetSpace::Get().Parse(Repeat("k3_e1"));
  const NetworkCost c = FbnetSpace::Get().Cost(a);
  EXPECT_EQ(c.macs, kStemMacs + macs + kHeadMacs);
  EXPECT_EQ(c.parameters, kStemParams + parameters + kHeadParams);
  // 16 shape-keeping layers have 3 convs + an add, 6 have 3 convs; + 4 fixed.
  EXPECT_EQ(FbnetSpace::Get().PrimitiveCount(a), 4 + 16 * 4 + 6 * 3);
}

TEST(FbnetSpace, CostOfMixedByHand) {
  // All skip except L0 = k5_e6 (16->16 @32, residual) and L5 = k3_e1_g2 (24->32 @32, s2).
  std::vector<std::string> blocks(kFbnetLayerCount, "skip");
  blocks[0] = "k5_e6";
  blocks[5] = "k3_e1_g2";
  const Architecture a = *FbnetSpace::Get().Parse(absl::StrJoin(blocks, "-"));
  // L0, mid = 6*16 = 96: expand 1024*16*96, depthwise 5x5 1024*96*25, project 1024*96*16.
  const int64_t l0_macs = 1024 * 16 * 96 + 1024 * 96 * 25 + 1024 * 96 * 16;
  const int64_t l0_params = (16 * 96 + 2 * 96) + (96 * 25 + 2 * 96) + (96 * 16 + 2 * 16);
  const int64_t l0_acts = 3 * 96 * 1024 + 3 * 96 * 1024 + 2 * 16 * 1024 + 16 * 1024;
  // L5, mid = 24, 2 groups: expand 1024*(24/2)*24, depthwise 3x3 256*24*9, project
  // 256*(24/2)*32; replaces the projecting skip of L5 (256*24*32).
  const int64_t l5_macs = 1024 * 12 * 24 + 256 * 24 * 9 + 256 * 12 * 32;
  const int64_t l5_params = (12 * 24 + 48) + (24 * 9 + 48) + (12 * 32 + 64);
  const int64_t l5_acts = 3 * 24 * 1024 + 3 * 24 * 256 + 2 * 32 * 256;
  const NetworkCost c = FbnetSpace::Get().Cost(a);
  EXPECT_EQ(c.macs, kStemMacs + kHeadMacs + kSkipMacs - 256 * 24 * 32 + l0_macs + l5_macs);
  EXPECT_EQ(c.parameters,
            kStemParams + kHeadParams + kSkipParams - (24 * 32 + 64) + l0_params + l5_params);
  EXPECT_EQ(c.activation_elements,
            kStemActs + kHeadActs + kSkipActs - 2 * 32 * 256 + l0_acts + l5_acts);
  EXPECT_TRUE(FbnetSpace::Get().IsOutputConnected(a));
}

TEST(ArchitectureSpace, OneHotFeatures) {
  const FbnetSpace& space = FbnetSpace::Get();
  const Architecture a = *space.Parse(kMixed);
  ASSERT_EQ(space.one_hot_dim(), 22 * 9);
  std::vector<double> f(space.one_hot_dim());
  space.OneHotFeatures(a, absl::MakeSpan(f));
  double total = 0;
  for (double v : f) total += v;
  EXPECT_EQ(total, 22);
  EXPECT_EQ(f[0 * 9 + 7], 1);  // layer 0 k5_e6
  EXPECT_EQ(f[1 * 9 + 8], 1);  // layer 1 skip
  EXPECT_EQ(f[21 * 9 + 8], 1);
  EXPECT_EQ(f[21 * 9 + 0], 0);

  const Nb201Space& nb = Nb201Space::Get();
  const Architecture c = *nb.Parse(
      "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|"
      "nor_conv_1x1~1|none~2|");
  std::vector<double> g(nb.one_hot_dim());
  nb.OneHotFeatures(c, absl::MakeSpan(g));
  EXPECT_EQ(g[0 * 5 + 3], 1);
  EXPECT_EQ(g[1 * 5 + 0], 1);
  EXPECT_EQ(g[2 * 5 + 1], 1);
  EXPECT_EQ(g[3 * 5 + 4], 1);
  EXPECT_EQ(g[4 * 5 + 2], 1);
  EXPECT_EQ(g[5 * 5 + 0], 1);
  EXPECT_EQ(nb.InteractingPositions().size(), 15u);
  EXPECT_TRUE(space.InteractingPositions().empty());
}

TEST(ArchitectureSpace, SamplingIsSeededAndCoversEveryOption) {
  const FbnetSpace& space = FbnetSpace::Get();
  const std::vector<Architecture> a = space.Sample(2000, 42);
  const std::vector<Architecture> b = space.Sample(2000, 42);
  const std::vector<Architecture> c = space.Sample(2000, 43);
  ASSERT_EQ(a.size(), 2000u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Every option at every position, near 1/9 each (2000/9 = 222; binomial sd ~ 14).
  for (int p = 0; p < kFbnetLayerCount; ++p) {
    std::vector<int> counts(kFbnetBlockCount, 0);
    for (const Architecture& x : a) ++counts[x.choice(p)];
    for (int n : counts) {
      EXPECT_GT(n, 150) << "layer " << p;
      EXPECT_LT(n, 300) << "layer " << p;
    }
  }
  absl::flat_hash_set<Architecture> distinct(a.begin(), a.end());
  EXPECT_EQ(distinct.size(), a.size());  // 9^22 members: a repeat would mean a broken generator
  // A fixed member pins the generator across platforms and releases.
  EXPECT_EQ(space.Sample(1, 7)[0].ToString(),
            "k3_e6-k3_e1-skip-k5_e1_g2-k5_e1-k3_e3-k5_e1-k3_e3-k3_e1_g2-k3_e6-k3_e1-skip-skip-"
            "k5_e6-k5_e6-k5_e1-k5_e6-k3_e3-k5_e1_g2-k5_e3-k5_e3-k3_e1");
}

TEST(ArchitectureSpace, DecodingABatchInPlaceGivesTheSameValues) {
  // Both spaces (22 and 6 codes per architecture): the fixed-width copies in the middle of
  // the batch and the exact-size ones at its end must give the values, one at a time.
  for (const ArchitectureSpace* space :
       {static_cast<const ArchitectureSpace*>(&FbnetSpace::Get()),
        static_cast<const ArchitectureSpace*>(&Nb201Space::Get())}) {
    const std::vector<Architecture> sampled = space->Sample(50, 3);
    std::vector<uint8_t> codes;
    for (const Architecture& a : sampled) {
      for (uint8_t c : a.choices()) codes.push_back(c);
    }
    // Garbage in the output buffer first: every byte of each value is written.
    std::vector<Architecture> decoded(sampled.size(), FbnetSpace::Get().Sample(1, 9)[0]);
    space->FromValidatedCodes(codes, absl::MakeSpan(decoded));
    const size_t n = static_cast<size_t>(space->positions());
    for (size_t i = 0; i < sampled.size(); ++i) {
      EXPECT_EQ(decoded[i], sampled[i]) << space->name() << " architecture " << i;
      EXPECT_EQ(decoded[i],
                space->FromValidatedCodes(absl::MakeConstSpan(codes).subspan(i * n, n)));
      EXPECT_EQ(absl::HashOf(decoded[i]), absl::HashOf(sampled[i]));
    }
  }
}

TEST(ArchitectureSpace, RegistryAndValues) {
  EXPECT_EQ(FindSpace("fbnet"), &FbnetSpace::Get());
  EXPECT_EQ(FindSpace("nb201"), &Nb201Space::Get());
  EXPECT_EQ(FindSpace("nasbench201"), &Nb201Space::Get());
  EXPECT_EQ(FindSpace("darts"), nullptr);
  EXPECT_EQ(SpaceNames(), (std::vector<std::string_view>{"nb201", "fbnet"}));
  absl::StatusOr<Architecture> bad = ParseArchitecture("darts", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown architecture space \"darts\""),
            std::string_view::npos);
  ASSERT_TRUE(ParseArchitecture("fbnet", kMixed).ok());

  EXPECT_LE(sizeof(Architecture), 40u);
  const Architecture x = *FbnetSpace::Get().Parse(kMixed);
  Architecture y = x;
  EXPECT_EQ(x, y);
  absl::StatusOr<Architecture> z = FbnetSpace::Get().FromChoices(
      {7, 8, 1, 0, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8});
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(*z, x);
  EXPECT_FALSE(FbnetSpace::Get().FromChoices({0, 1}).ok());
  absl::StatusOr<Architecture> out_of_range = FbnetSpace::Get().FromChoices(
      {7, 8, 1, 0, 2, 3, 4, 5, 6, 7, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8});
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.status().message().find("position 10"), std::string_view::npos);
  // NB201 and FBNet values never compare equal even with equal leading choices.
  EXPECT_NE(*Nb201Space::Get().FromChoices({0, 0, 0, 0, 0, 0}),
            *FbnetSpace::Get().Parse(Repeat("k3_e1")));
}

TEST(Nb201Space, ArchitectureValueAndIndexAlias) {
  const Nb201Space& space = Nb201Space::Get();
  for (int32_t i : {0, 1, 1462, 15624}) {
    absl::StatusOr<Architecture> a = space.ArchitectureAt(i);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(space.IndexOf(*a), i);
    EXPECT_EQ(a->ToString(), *space.ArchString(i));
    absl::StatusOr<Architecture> alias = space.Parse(std::to_string(i));
    ASSERT_TRUE(alias.ok());
    EXPECT_EQ(*alias, *a);
    EXPECT_EQ(*space.Parse(a->ToString()), *a);
    EXPECT_EQ(space.Cost(*a).macs, space.Cost(i).macs);
    EXPECT_EQ(space.PrimitiveCount(*a), space.PrimitiveCount(i));
    EXPECT_EQ(space.IsOutputConnected(*a), space.IsOutputConnected(i));
  }
  EXPECT_FALSE(space.Parse("15625").ok());
  EXPECT_FALSE(space.Parse("99999999999").ok());
  absl::StatusOr<Architecture> bad = space.Parse("|nor_conv_3x3~0|+|none~0|");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("character"), std::string_view::npos);
  const std::vector<Architecture> s = space.Sample(500, 3);
  EXPECT_EQ(s, space.Sample(500, 3));
  std::set<int32_t> indices;
  for (const Architecture& a : s) indices.insert(space.IndexOf(a));
  EXPECT_GT(indices.size(), 480u);  // 500 draws from 15,625: few repeats
}

}  // namespace
}  // namespace maplex::core

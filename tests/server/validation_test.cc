#include "server/validation.h"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
#include "core/arch/packed_choices.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::server {
namespace {

using ::testing::HasSubstr;

int32_t Index(const absl::StatusOr<core::Architecture>& a) {
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? core::Nb201Space::Get().IndexOf(*a) : -1;
}

// 22 FBNet block names: every layer k3_e1 but the given ones.
std::string FbnetString(int layers = 22, const std::string& at5 = "k3_e1") {
  std::string s;
  for (int i = 0; i < layers; ++i) s += (i ? "-" : "") + (i == 5 ? at5 : std::string("k3_e1"));
  return s;
}

TEST(ResolveArchitectureTest, IndexAndCellAgree) {
  v1::Architecture by_index;
  by_index.set_index(0);
  EXPECT_EQ(Index(ResolveArchitecture(by_index, "a")), 0);
  v1::Architecture by_cell;
  // Index 0 of the official NAS-Bench-201 order (data/nb201_arch_index.csv).
  by_cell.set_cell(
      "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
      "skip_connect~2|");
  EXPECT_EQ(Index(ResolveArchitecture(by_cell, "a")), 0);
  by_cell.set_space("nb201");
  EXPECT_EQ(Index(ResolveArchitecture(by_cell, "a")), 0);
  by_cell.set_space("nasbench201");  // the alias
  EXPECT_EQ(Index(ResolveArchitecture(by_cell, "a")), 0);
  // canonical: the cell string, or the index as NB201's alias.
  v1::Architecture canonical;
  canonical.set_canonical(by_cell.cell());
  EXPECT_EQ(Index(ResolveArchitecture(canonical, "a")), 0);
  canonical.set_canonical("1462");
  EXPECT_EQ(Index(ResolveArchitecture(canonical, "a")), 1462);
}

TEST(ResolveArchitectureTest, ResolvesFbnetCanonicalStrings) {
  v1::Architecture a;
  a.set_space("fbnet");
  a.set_canonical(FbnetString(22, "skip"));
  auto arch = ResolveArchitecture(a, "a");
  ASSERT_TRUE(arch.ok()) << arch.status();
  EXPECT_EQ(arch->space(), &core::FbnetSpace::Get());
  EXPECT_EQ(arch->ToString(), FbnetString(22, "skip"));
}

// Malformed FBNet strings name the field, the position and the token.
TEST(ResolveArchitectureTest, NamesTheFbnetFault) {
  v1::Architecture a;
  a.set_space("fbnet");
  auto message = [&] {
    auto r = ResolveArchitecture(a, "archs[2]");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  a.set_canonical(FbnetString(22, "k9_e9"));  // unknown block at layer 5
  EXPECT_THAT(message(), HasSubstr("archs[2].canonical"));
  EXPECT_THAT(message(), HasSubstr("k9_e9"));
  EXPECT_THAT(message(), HasSubstr("5"));
  a.set_canonical(FbnetString(21));  // wrong layer count
  EXPECT_THAT(message(), HasSubstr("archs[2].canonical"));
  EXPECT_THAT(message(), HasSubstr("21"));
  a.set_canonical("k3_e1--k3_e1");
  EXPECT_THAT(message(), HasSubstr("archs[2].canonical"));
  // NB201's older forms are NB201's only.
  a.set_cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
  EXPECT_THAT(message(), HasSubstr("archs[2].cell: is a form of nb201 architectures only"));
  a.set_index(3);
  EXPECT_THAT(message(), HasSubstr("archs[2].index"));
  a.set_space("resnet");
  EXPECT_THAT(message(), HasSubstr("archs[2].space: \"resnet\" is not a known search space"));
}

TEST(ResolveArchitectureTest, NamesTheFieldAndTheFault) {
  v1::Architecture a;
  auto none = ResolveArchitecture(a, "archs[3]");
  EXPECT_THAT(none.status().message(), HasSubstr("archs[3]: names no architecture"));
  a.set_index(15625);
  EXPECT_THAT(ResolveArchitecture(a, "archs[3]").status().message(),
              HasSubstr("archs[3].index: 15625 is outside 0..15624"));
  a.set_cell("|nor_conv_3x3~0|+|oops~0|none~1|+|none~0|none~1|none~2|");
  auto bad = ResolveArchitecture(a, "x");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("x.cell"));
  a.set_space("nope");
  EXPECT_THAT(ResolveArchitecture(a, "x").status().message(), HasSubstr("x.space"));
}

TEST(ValidateIdentifierTest, AcceptsIdsAndRejectsOthers) {
  Limits limits;
  EXPECT_TRUE(ValidateIdentifier("1080ti_32", "id", limits).ok());
  EXPECT_TRUE(ValidateIdentifier("import:gold_6240:15624", "id", limits).ok());
  EXPECT_THAT(ValidateIdentifier("", "id", limits).message(), HasSubstr("id: is empty"));
  EXPECT_THAT(ValidateIdentifier("a\nb", "id", limits).message(), HasSubstr("outside"));
  EXPECT_THAT(ValidateIdentifier(std::string(129, 'x'), "id", limits).message(),
              HasSubstr("longer than 128"));
}

TEST(ValidateMeasurementBatchTest, TurnsAValidBatchIntoRows) {
  v1::MeasurementBatch batch;
  v1::Measurement* m = batch.add_measurements();
  m->set_id("m1");
  m->set_device_id("d");
  m->mutable_arch()->set_index(42);
  m->mutable_stats()->set_median_ms(3.5);
  m->set_measured_at_unix_ms(99);
  auto rows = ValidateMeasurementBatch(batch, Limits());
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(core::Nb201Space::Get().IndexOf((*rows)[0].arch), 42);
  EXPECT_EQ((*rows)[0].stats.median_ms(), 3.5);
  EXPECT_EQ((*rows)[0].measured_at_unix_ms, 99);
}

TEST(ValidateMeasurementBatchTest, RespectsTheBatchLimit) {
  Limits limits;
  limits.max_measurements_per_batch = 1;
  v1::MeasurementBatch batch;
  batch.add_measurements();
  batch.add_measurements();
  EXPECT_EQ(ValidateMeasurementBatch(batch, limits).status().code(),
            absl::StatusCode::kResourceExhausted);
}

v1::Measurement FbnetMeasurement(const std::string& id, const std::string& arch) {
  v1::Measurement m;
  m.set_id(id);
  m.set_device_id("d");
  m.mutable_arch()->set_space("fbnet");
  m.mutable_arch()->set_canonical(arch);
  m.mutable_stats()->set_median_ms(3.5);
  return m;
}

TEST(ValidateMeasurementBatchTest, FbnetRowsCarryTheirArchitecture) {
  v1::MeasurementBatch batch;
  *batch.add_measurements() = FbnetMeasurement("f1", FbnetString(22, "k5_e6"));
  *batch.add_measurements() = FbnetMeasurement("f2", FbnetString());
  auto rows = ValidateMeasurementBatch(batch, Limits());
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].arch.ToString(), FbnetString(22, "k5_e6"));
  EXPECT_EQ((*rows)[1].arch.space(), &core::FbnetSpace::Get());
}

TEST(ValidateMeasurementBatchTest, NamesTheMeasurementOfABadOrMixedArchitecture) {
  v1::MeasurementBatch batch;
  *batch.add_measurements() = FbnetMeasurement("f1", FbnetString());
  *batch.add_measurements() = FbnetMeasurement("f2", FbnetString(22, "k7_e6"));
  auto bad = ValidateMeasurementBatch(batch, Limits());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("measurements[1].arch.canonical"));
  EXPECT_THAT(bad.status().message(), HasSubstr("k7_e6"));
  // Mixed spaces: the first measurement of another space is named.
  *batch.mutable_measurements(1) = FbnetMeasurement("f2", FbnetString());
  v1::Measurement* nb201 = batch.add_measurements();
  *nb201 = FbnetMeasurement("n3", "");
  nb201->mutable_arch()->Clear();
  nb201->mutable_arch()->set_index(5);
  auto mixed = ValidateMeasurementBatch(batch, Limits());
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mixed.status().message(),
              HasSubstr("measurements[2].arch.space: space nb201 differs from fbnet of "
                        "measurements[0]"));
}

// Field names are built only when a check fails (server/validation.cc, CheckField): every
// kind of fault still names its measurement and field, whatever its place in the batch.
TEST(ValidateMeasurementBatchTest, NamesTheFieldOfEachFault) {
  Limits limits;
  const std::string too_long(limits.max_text_length + 1, 'x');
  const std::string too_long_arch(limits.max_arch_string_length + 1, 'x');
  const std::vector<std::pair<std::function<void(v1::Measurement&)>, std::string>> faults = {
      {[](v1::Measurement& m) { m.set_id(""); }, "measurements[3].id: is empty"},
      {[](v1::Measurement& m) { m.set_id("m0"); }, "measurements[3].id: \"m0\" appears twice"},
      {[](v1::Measurement& m) { m.set_device_id("a b"); }, "measurements[3].device_id: \"a b\""},
      {[&](v1::Measurement& m) { m.mutable_arch()->set_canonical(too_long_arch); },
       "measurements[3].arch.canonical: "},
      {[](v1::Measurement& m) { m.mutable_arch()->set_index(15625); },
       "measurements[3].arch.index: 15625 is outside"},
      {[](v1::Measurement& m) { m.mutable_arch()->set_space("resnet"); },
       "measurements[3].arch.space: \"resnet\" is not a known search space"},
      {[](v1::Measurement& m) { m.mutable_stats()->set_median_ms(0); },
       "measurements[3].stats.median_ms: 0 is not a positive"},
      {[](v1::Measurement& m) { m.mutable_stats()->set_p90_ms(-1); },
       "measurements[3].stats.p90_ms: -1 is not a non-negative"},
      {[](v1::Measurement& m) { m.mutable_stats()->set_stddev_ms(-1); },
       "measurements[3].stats.stddev_ms: -1"},
      {[](v1::Measurement& m) { m.mutable_stats()->set_repeats(-2); },
       "measurements[3].stats.repeats: -2 is negative"},
      {[&](v1::Measurement& m) { m.mutable_protocol()->set_notes(too_long); },
       "measurements[3].protocol.notes: "},
      {[&](v1::Measurement& m) { m.mutable_protocol()->set_tool(too_long); },
       "measurements[3].protocol.tool: "},
  };
  for (const auto& [fault, message] : faults) {
    v1::MeasurementBatch batch;
    for (int i = 0; i < 5; ++i) {
      v1::Measurement* m = batch.add_measurements();
      m->set_id("m" + std::to_string(i));
      m->set_device_id("d");
      m->mutable_arch()->set_index(i);
      m->mutable_stats()->set_median_ms(1.0 + i);
      if (i == 3) fault(*m);
    }
    auto rows = ValidateMeasurementBatch(batch, limits);
    EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(rows.status().message(), HasSubstr(message));
  }
}

TEST(ValidatePredictRequestTest, ReturnsTheIndicesInOrder) {
  v1::PredictRequest r;
  r.set_device_id("d");
  r.add_archs()->set_index(9);
  r.add_archs()->set_index(3);
  r.add_archs()->set_canonical("7");
  auto archs = ValidatePredictRequest(r, Limits());
  ASSERT_TRUE(archs.ok());
  EXPECT_EQ(archs->space, &core::Nb201Space::Get());
  EXPECT_EQ(archs->nb201_indices, (std::vector<int32_t>{9, 3, 7}));
  EXPECT_TRUE(archs->archs.empty());
}

TEST(ValidatePredictRequestTest, IntervalFactorsNeedColumnarAnswers) {
  v1::PredictRequest r;
  r.set_device_id("d");
  r.add_archs()->set_index(9);
  r.set_interval_factors(true);
  auto rows = ValidatePredictRequest(r, Limits());
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rows.status().message(), HasSubstr("interval_factors"));
  r.set_columnar(true);
  EXPECT_TRUE(ValidatePredictRequest(r, Limits()).ok());
}

TEST(ValidatePredictRequestTest, FbnetArchitecturesResolveToValues) {
  v1::PredictRequest r;
  r.set_device_id("d");
  for (const char* block : {"skip", "k5_e3"}) {
    v1::Architecture* a = r.add_archs();
    a->set_space("fbnet");
    a->set_canonical(FbnetString(22, block));
  }
  auto archs = ValidatePredictRequest(r, Limits());
  ASSERT_TRUE(archs.ok()) << archs.status();
  EXPECT_EQ(archs->space, &core::FbnetSpace::Get());
  ASSERT_EQ(archs->archs.size(), 2u);
  EXPECT_EQ(archs->archs[1].ToString(), FbnetString(22, "k5_e3"));
  EXPECT_TRUE(archs->nb201_indices.empty());
}

TEST(ValidatePredictRequestTest, MixedSpacesNameTheFirstArchitectureOfAnotherSpace) {
  v1::PredictRequest r;
  r.set_device_id("d");
  r.add_archs()->set_index(1);
  r.add_archs()->set_index(2);
  v1::Architecture* f = r.add_archs();
  f->set_space("fbnet");
  f->set_canonical(FbnetString());
  auto mixed = ValidatePredictRequest(r, Limits());
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mixed.status().message(),
              HasSubstr("archs[2].space: space fbnet differs from nb201 of archs[0]"));
  // A bad FBNet string after good ones is named by its position.
  r.clear_archs();
  for (int i = 0; i < 3; ++i) {
    v1::Architecture* a = r.add_archs();
    a->set_space("fbnet");
    a->set_canonical(i == 2 ? FbnetString(23) : FbnetString());
  }
  auto bad = ValidatePredictRequest(r, Limits());
  EXPECT_THAT(bad.status().message(), HasSubstr("archs[2].canonical"));
  // Sizes hold for canonical strings too.
  Limits small;
  small.max_arch_string_length = 10;
  auto long_string = ValidatePredictRequest(r, small);
  EXPECT_THAT(long_string.status().message(), HasSubstr("archs[0].canonical"));
}

TEST(ValidatePredictRequestTest, AnFbnetArchBatchResolvesEachArchitecture) {
  v1::PredictRequest r;
  r.set_device_id("d");
  std::string codes(44, 0);
  codes[22 + 21] = 8;  // the second architecture's last layer: skip
  r.mutable_arch_batch()->set_space("fbnet");
  r.mutable_arch_batch()->set_choices(codes);
  auto archs = ValidatePredictRequest(r, Limits());
  ASSERT_TRUE(archs.ok()) << archs.status();
  ASSERT_EQ(archs->archs.size(), 2u);
  EXPECT_EQ(archs->archs[1].choice(21), 8);
  EXPECT_EQ(archs->archs[0].choice(21), 0);
  codes[22 + 3] = 9;
  r.mutable_arch_batch()->set_choices(codes);
  EXPECT_THAT(ValidatePredictRequest(r, Limits()).status().message(),
              HasSubstr("arch_batch.choices: architecture 1, position 3: code 9 is outside 0..8"));
  r.mutable_arch_batch()->set_choices(std::string(23, 0));
  EXPECT_THAT(ValidatePredictRequest(r, Limits()).status().message(),
              HasSubstr("23 bytes are not a whole number of 22-byte fbnet architectures"));
}

TEST(ValidatePredictRequestTest, AnArchBatchResolvesEachArchitectureInOrder) {
  v1::PredictRequest r;
  r.set_device_id("d");
  // Index 0's cell (avg_pool, conv1x1, skip, conv1x1, skip, skip) and the all-none cell.
  const std::string codes = {4, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0};
  r.mutable_arch_batch()->set_choices(codes);
  auto archs = ValidatePredictRequest(r, Limits());
  ASSERT_TRUE(archs.ok()) << archs.status();
  v1::Architecture none;
  none.set_cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
  EXPECT_EQ(archs->nb201_indices, (std::vector<int32_t>{0, Index(ResolveArchitecture(none, "a"))}));
}

TEST(ValidatePredictRequestTest, ABadArchBatchIsNamed) {
  v1::PredictRequest r;
  r.set_device_id("d");
  auto message = [&] {
    return std::string(ValidatePredictRequest(r, Limits()).status().message());
  };
  r.mutable_arch_batch()->set_choices(std::string{0, 0, 0, 0, 0});
  EXPECT_THAT(message(), HasSubstr("arch_batch.choices: 5 bytes are not a whole number"));
  r.mutable_arch_batch()->set_choices(std::string{0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0});
  EXPECT_THAT(message(), HasSubstr("architecture 1, edge 2: op code 7 is outside 0..4"));
  r.mutable_arch_batch()->set_choices("");
  EXPECT_THAT(message(), HasSubstr("arch_batch.choices: is empty"));
  r.mutable_arch_batch()->set_space("imagenet");
  EXPECT_THAT(message(), HasSubstr("arch_batch.space"));
  r.mutable_arch_batch()->set_space("");
  r.mutable_arch_batch()->set_choices(std::string(6, 0));
  r.add_archs()->set_index(1);
  EXPECT_THAT(message(), HasSubstr("arch_batch: is set together with archs"));
  r.clear_archs();
  Limits small;
  small.max_archs_per_predict = 2;
  r.mutable_arch_batch()->set_choices(std::string(18, 0));
  EXPECT_EQ(ValidatePredictRequest(r, small).status().code(), absl::StatusCode::kResourceExhausted);
}

// FBNet codes of `count` architectures, every code 0..8, varied across positions.
std::string FbnetCodes(size_t count) {
  std::string codes(count * 22, 0);
  for (size_t j = 0; j < codes.size(); ++j) codes[j] = static_cast<char>((j * 5 + j / 7) % 9);
  return codes;
}

TEST(ValidatePredictRequestTest, APackedBatchDecodesAsTheSameBatchOneBytePerChoice) {
  v1::PredictRequest bytes;
  bytes.set_device_id("d");
  bytes.mutable_arch_batch()->set_space("fbnet");
  bytes.mutable_arch_batch()->set_choices(FbnetCodes(37));
  v1::PredictRequest packed = bytes;
  packed.mutable_arch_batch()->set_choices(core::PackChoiceNibbles(FbnetCodes(37)));
  packed.mutable_arch_batch()->set_bits_per_choice(4);
  ASSERT_EQ(packed.arch_batch().choices().size(), 37u * 11);
  auto from_bytes = ValidatePredictRequest(bytes, Limits());
  auto from_packed = ValidatePredictRequest(packed, Limits());
  ASSERT_TRUE(from_bytes.ok()) << from_bytes.status();
  ASSERT_TRUE(from_packed.ok()) << from_packed.status();
  ASSERT_EQ(from_packed->archs.size(), 37u);
  EXPECT_EQ(from_packed->archs, from_bytes->archs);
  // Left encoded (the Predict hot path): any chunk decodes to the same codes.
  auto encoded = ValidatePredictRequest(packed, Limits(), /*decode_batch=*/false);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->encoded.bits_per_choice, 4);
  EXPECT_EQ(encoded->encoded.count, 37u);
  std::vector<uint8_t> scratch;
  for (size_t start : {0, 1, 5, 36}) {
    const size_t m = std::min<size_t>(6, 37 - start);
    absl::Span<const uint8_t> codes = encoded->encoded.Codes(start, m, &scratch);
    EXPECT_EQ(std::string(codes.begin(), codes.end()), FbnetCodes(37).substr(start * 22, m * 22))
        << start;
  }
  // NB201 too: the indices of the same cells.
  const std::string cells = {4, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 3, 4, 0, 1, 2, 3};
  v1::PredictRequest nb201;
  nb201.set_device_id("d");
  nb201.mutable_arch_batch()->set_choices(cells);
  auto nb201_bytes = ValidatePredictRequest(nb201, Limits());
  nb201.mutable_arch_batch()->set_choices(core::PackChoiceNibbles(cells));
  nb201.mutable_arch_batch()->set_bits_per_choice(4);
  auto nb201_packed = ValidatePredictRequest(nb201, Limits());
  ASSERT_TRUE(nb201_bytes.ok() && nb201_packed.ok()) << nb201_packed.status();
  ASSERT_EQ(nb201_packed->nb201_indices.size(), 3u);
  EXPECT_EQ(nb201_packed->nb201_indices, nb201_bytes->nb201_indices);
  // 8 says one byte per choice, as 0 does.
  bytes.mutable_arch_batch()->set_bits_per_choice(8);
  auto eight = ValidatePredictRequest(bytes, Limits());
  ASSERT_TRUE(eight.ok()) << eight.status();
  EXPECT_EQ(eight->archs, from_bytes->archs);
}

TEST(ValidatePredictRequestTest, ABadPackedBatchIsNamed) {
  v1::PredictRequest r;
  r.set_device_id("d");
  r.mutable_arch_batch()->set_space("fbnet");
  r.mutable_arch_batch()->set_bits_per_choice(4);
  auto message = [&](const Limits& limits = Limits()) {
    auto v = ValidatePredictRequest(r, limits);
    EXPECT_FALSE(v.ok());
    return std::string(v.status().message());
  };
  auto set = [&](const std::string& codes) {
    r.mutable_arch_batch()->set_choices(core::PackChoiceNibbles(codes));
  };
  // A code out of range in a low nibble (even position) and in a high one (odd position),
  // past the first word and in the tail.
  for (size_t p : {6, 7}) {
    std::string codes = FbnetCodes(3);
    codes[22 + p] = 9;
    set(codes);
    EXPECT_THAT(message(), HasSubstr(absl::StrCat("arch_batch.choices: architecture 1, position ",
                                                  p, ": code 9 is outside 0..8")));
    codes[22 + p] = 8;
    codes[2 * 22 + 21] = 15;
    set(codes);
    EXPECT_THAT(message(), HasSubstr("architecture 2, position 21: code 15 is outside 0..8"));
  }
  // Lengths that are no whole number of 11-byte architectures.
  r.mutable_arch_batch()->set_choices(std::string(12, 0));
  EXPECT_THAT(message(), HasSubstr("arch_batch.choices: 12 bytes are not a whole number of "
                                   "22-choice fbnet architectures at 4 bits per choice"));
  r.mutable_arch_batch()->set_choices(std::string(10, 0));
  EXPECT_THAT(message(), HasSubstr("10 bytes are not a whole number"));
  r.mutable_arch_batch()->set_choices("");
  EXPECT_THAT(message(), HasSubstr("arch_batch.choices: is empty"));
  // Only 0, 8 and 4 bits.
  set(FbnetCodes(2));
  for (uint32_t bits : {1, 2, 3, 5, 16, 32}) {
    r.mutable_arch_batch()->set_bits_per_choice(bits);
    EXPECT_THAT(message(),
                HasSubstr(absl::StrCat("arch_batch.bits_per_choice: ", bits, " is not supported")));
  }
  r.mutable_arch_batch()->set_bits_per_choice(4);
  ASSERT_TRUE(ValidatePredictRequest(r, Limits()).ok());
  // The per-request limit counts architectures, not bytes.
  Limits two;
  two.max_archs_per_predict = 2;
  EXPECT_TRUE(ValidatePredictRequest(r, two).ok());
  set(FbnetCodes(3));
  EXPECT_EQ(ValidatePredictRequest(r, two).status().code(), absl::StatusCode::kResourceExhausted);
  // NB201 names the edge, as its unpacked batch does.
  r.mutable_arch_batch()->set_space("nb201");
  set(std::string{0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0});
  EXPECT_THAT(message(), HasSubstr("arch_batch.choices: architecture 1, edge 3: op code 5 is "
                                   "outside 0..4"));
  r.mutable_arch_batch()->set_choices(std::string(4, 0));
  EXPECT_THAT(message(), HasSubstr("4 bytes are not a whole number of 6-choice nb201"));
  r.mutable_arch_batch()->set_bits_per_choice(7);
  EXPECT_THAT(message(), HasSubstr("arch_batch.bits_per_choice: 7 is not supported"));
}

}  // namespace
}  // namespace maplex::server

#include "server/validation.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"
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
  auto message = [&] { return std::string(ValidatePredictRequest(r, Limits()).status().message()); };
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
  EXPECT_EQ(ValidatePredictRequest(r, small).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace maplex::server

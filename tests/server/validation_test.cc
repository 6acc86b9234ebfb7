#include "server/validation.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::server {
namespace {

using ::testing::HasSubstr;

TEST(ResolveArchitectureTest, IndexAndCellAgree) {
  v1::Architecture by_index;
  by_index.set_index(0);
  EXPECT_EQ(*ResolveArchitecture(by_index, "a"), 0);
  v1::Architecture by_cell;
  // Index 0 of the official NAS-Bench-201 order (data/nb201_arch_index.csv).
  by_cell.set_cell(
      "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
      "skip_connect~2|");
  EXPECT_EQ(*ResolveArchitecture(by_cell, "a"), 0);
  by_cell.set_space("nb201");
  EXPECT_EQ(*ResolveArchitecture(by_cell, "a"), 0);
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
  a.set_space("fbnet");
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
  EXPECT_EQ((*rows)[0].arch_index, 42);
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

TEST(ValidatePredictRequestTest, ReturnsTheIndicesInOrder) {
  v1::PredictRequest r;
  r.set_device_id("d");
  r.add_archs()->set_index(9);
  r.add_archs()->set_index(3);
  auto archs = ValidatePredictRequest(r, Limits());
  ASSERT_TRUE(archs.ok());
  EXPECT_EQ(*archs, (std::vector<int32_t>{9, 3}));
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
  EXPECT_EQ(*archs, (std::vector<int32_t>{0, *ResolveArchitecture(none, "a")}));
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
  r.mutable_arch_batch()->set_space("fbnet");
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

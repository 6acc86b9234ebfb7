#include "core/dataset/latency_table.h"

#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::core {
namespace {

using ::testing::HasSubstr;

constexpr char kDevices[] =
    "device,hardware,category,isa,batch_size,precision,compute_units,base_clock_ghz,note\n"
    "gpu_1,Big GPU,desktop_gpu,cuda,1,fp32,3584,1.48,\n"
    "gpu_32,Big GPU,desktop_gpu,cuda,32,fp16,3584,,\"blank clock, quoted note\"\n";

std::string Row(int32_t index, const std::string& rest) {
  return std::to_string(index) + "," + *Nb201Space::Get().ArchString(index) + "," + rest + "\n";
}

TEST(LatencyTableTest, ParsesSpecsGroupingAndBlankCells) {
  const std::string latency =
      "arch_index,arch_str,gpu_1,gpu_32,phone\r\n" + Row(0, "1.5,2.5,30") + Row(7, "1.25,,31");
  absl::StatusOr<std::vector<DeviceData>> d =
      ParseLatencyTable(latency, kDevices, Nb201Space::Get());
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[0].device, "gpu_1");
  EXPECT_EQ((*d)[0].hardware, "Big GPU");
  EXPECT_EQ((*d)[1].hardware, "Big GPU");
  EXPECT_EQ((*d)[2].hardware, "phone");  // no devices row: its own hardware
  EXPECT_EQ((*d)[0].descriptor.spec.category, DeviceCategory::kDesktopGpu);
  EXPECT_EQ((*d)[0].descriptor.spec.compute_units, 3584);
  EXPECT_EQ((*d)[0].descriptor.spec.base_clock_ghz, 1.48);
  EXPECT_FALSE((*d)[1].descriptor.spec.base_clock_ghz.has_value());
  EXPECT_FALSE((*d)[0].descriptor.spec.memory_gib.has_value());  // column absent
  EXPECT_EQ((*d)[1].descriptor.spec.batch_size, 32);
  EXPECT_EQ((*d)[1].descriptor.spec.precision, "fp16");
  ASSERT_EQ((*d)[0].samples.size(), 2u);
  EXPECT_EQ((*d)[0].samples[1].arch_index, 7);
  EXPECT_EQ((*d)[0].samples[1].latency_ms, 1.25);
  EXPECT_EQ((*d)[1].samples.size(), 1u);  // blank cell = not measured
}

TEST(LatencyTableTest, RejectsBadNumbersNamingLineAndColumn) {
  const std::string header = "arch_index,arch_str,gpu_1\n";
  struct Case {
    std::string latency;
    std::string fault;
  };
  const Case cases[] = {
      {header + Row(0, "abc"), "line 2, column gpu_1"},
      {header + Row(0, "-1"), "not a finite positive latency"},
      {header + Row(0, "nan"), "not a finite positive latency"},
      {header + "15625,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n", "arch_index"},
      {header + "0," + *Nb201Space::Get().ArchString(1) + ",1\n", "is index 1, not 0"},
      {header + Row(0, "1,2"), "fields"},
      {"arch_index,arch_str,a,a\n", "twice"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<DeviceData>> d =
        ParseLatencyTable(c.latency, kDevices, Nb201Space::Get());
    ASSERT_FALSE(d.ok()) << c.latency;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(c.fault));
  }
  absl::StatusOr<std::vector<DeviceRow>> bad_spec =
      ParseDevicesCsv("device,compute_units\nx,12cores\n");
  ASSERT_FALSE(bad_spec.ok());
  EXPECT_THAT(std::string(bad_spec.status().message()), HasSubstr("column compute_units"));
}

TEST(LatencyTableTest, SplitsQuotedFields) {
  EXPECT_THAT(SplitCsvLine("a,\"b,c\",\"d\"\"e\","),
              ::testing::ElementsAre("a", "b,c", "d\"e", ""));
}

}  // namespace
}  // namespace maplex::core

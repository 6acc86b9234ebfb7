#include "core/dataset/latency_table.h"

#include <cmath>

#include "core/arch/fbnet_space.h"
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

std::string FbnetArch(const std::string& first) {
  std::string a = first;
  for (int l = 1; l < kFbnetLayerCount; ++l) a += "-skip";
  return a;
}

TEST(SpaceLatencyTableTest, ParsesFbnetTableAndDetectsTheSpace) {
  const std::string latency =
      "arch,gpu_1,phone\n" + FbnetArch("k5_e6") + ",1.5,31\n" + FbnetArch("k3_e1") + ",,30\n";
  absl::StatusOr<SpaceLatencyTable> t = ParseSpaceLatencyTable(latency, kDevices);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->space, &FbnetSpace::Get());
  ASSERT_EQ(t->archs.size(), 2u);
  EXPECT_EQ(t->archs[0].choice(0), 7);
  EXPECT_EQ(t->archs[1].ToString(), FbnetArch("k3_e1"));
  ASSERT_EQ(t->devices.size(), 2u);
  EXPECT_EQ(t->devices[0].hardware, "Big GPU");
  EXPECT_EQ(t->devices[1].hardware, "phone");
  EXPECT_EQ(t->devices[0].latency_ms[0], 1.5);
  EXPECT_TRUE(std::isnan(t->devices[0].latency_ms[1]));
  EXPECT_EQ(t->devices[1].latency_ms[1], 30);
}

TEST(SpaceLatencyTableTest, ParsesNb201TableByValue) {
  const std::string latency = "arch_index,arch_str,gpu_1\n" + Row(0, "1.5") + Row(15624, "2.5");
  absl::StatusOr<SpaceLatencyTable> t = ParseSpaceLatencyTable(latency, kDevices);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->space, &Nb201Space::Get());
  EXPECT_EQ(Nb201Space::Get().IndexOf(t->archs[1]), 15624);
  EXPECT_EQ(t->devices[0].latency_ms[1], 2.5);
}

TEST(SpaceLatencyTableTest, RejectsBadRowsNamingLineAndColumn) {
  struct Case {
    std::string latency;
    std::string fault;
  };
  const std::string row = FbnetArch("skip");
  const std::vector<Case> cases = {
      {"arch,gpu_1\n" + row + ",1\n" + row + ",2\n", "line 3, column arch: repeats"},
      {"arch,gpu_1\n" + row + ",1\nskip-k9,2\n", "line 3, column arch: FBNet architecture:"},
      {"arch,gpu_1\nnonsense,1\n", "line 2, column arch: is an architecture of no registered"},
      {"arch,gpu_1\n" + row + ",-1\n", "line 2, column gpu_1: not a finite positive latency"},
      {"arch,gpu_1,gpu_1\n" + row + ",1,2\n", "appears twice"},
      {"arch\n" + row + "\n", "name one device or more"},
      {"arch_index,arch_str,gpu_1\n" + Row(0, "1").replace(0, 1, "5"),
       "line 2, column arch_index: is not the index of"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SpaceLatencyTable> t = ParseSpaceLatencyTable(c.latency, kDevices);
    ASSERT_FALSE(t.ok()) << c.latency;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.fault));
  }
  EXPECT_FALSE(ParseSpaceLatencyTable("arch_index,arch_str,gpu_1\n" + Row(0, "1"), kDevices,
                                      &FbnetSpace::Get())
                   .ok());
}

}  // namespace
}  // namespace maplex::core

#include "agent/probe/file_system.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

using ::testing::ElementsAre;

TEST(InMemoryFileSystemTest, ReadsWhatWasAdded) {
  InMemoryFileSystem fs;
  fs.AddFile("/proc/meminfo", "MemTotal: 1 kB\n");
  ASSERT_TRUE(fs.ReadFile("/proc/meminfo").ok());
  EXPECT_EQ(*fs.ReadFile("/proc/meminfo"), "MemTotal: 1 kB\n");
  EXPECT_EQ(fs.ReadFile("/proc/cpuinfo").status().code(), absl::StatusCode::kNotFound);
}

TEST(InMemoryFileSystemTest, ListsImmediateChildrenOnly) {
  InMemoryFileSystem fs;
  fs.AddFile("/sys/cpu/cpu0/cache/index0/size", "48K");
  fs.AddFile("/sys/cpu/cpu0/cache/index1/size", "32K");
  fs.AddFile("/sys/cpu/cpu1/online", "1");
  fs.AddFile("/sys/cpuX", "not a child of /sys/cpu");
  EXPECT_THAT(*fs.ListDirectory("/sys/cpu"), ElementsAre("cpu0", "cpu1"));
  EXPECT_THAT(*fs.ListDirectory("/sys/cpu/cpu0/cache/"), ElementsAre("index0", "index1"));
  EXPECT_EQ(fs.ListDirectory("/nowhere").status().code(), absl::StatusCode::kNotFound);
}

TEST(RealFileSystemTest, ReadsProcAndListsSys) {
  absl::StatusOr<std::string> cpuinfo = RealFileSystem().ReadFile("/proc/cpuinfo");
  ASSERT_TRUE(cpuinfo.ok()) << cpuinfo.status();
  EXPECT_NE(cpuinfo->find("processor"), std::string::npos);
  absl::StatusOr<std::vector<std::string>> cpus =
      RealFileSystem().ListDirectory("/sys/devices/system/cpu");
  ASSERT_TRUE(cpus.ok()) << cpus.status();
  EXPECT_THAT(*cpus, ::testing::Contains("cpu0"));
  EXPECT_EQ(RealFileSystem().ReadFile("/proc/no-such-file").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace maplex::agent

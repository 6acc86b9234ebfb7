#include "agent/probe/device_probe.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kCpu[] = "/sys/devices/system/cpu";

std::string X86CpuInfo(int processors, const std::string& mhz) {
  std::string text;
  for (int i = 0; i < processors; ++i) {
    absl::StrAppend(&text, "processor\t: ", i,
                    "\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\n"
                    "physical id\t: 0\ncpu cores\t: 6\ncpu MHz\t\t: ",
                    mhz, "\nflags\t\t: fpu lm sse4_2 avx avx2 fma f16c pti md_clear\n\n");
  }
  return text;
}

constexpr char kMachineId[] = "4b1e0f5d2c7a4e9b8f3d6a1c0e2b5d7f";

// A 6-core / 12-thread desktop with full sysfs and a machine id.
void AddDesktop(InMemoryFileSystem& fs, const std::string& mhz = "3193.000") {
  fs.AddFile("/etc/machine-id", std::string(kMachineId) + "\n");
  fs.AddFile("/proc/cpuinfo", X86CpuInfo(12, mhz));
  fs.AddFile("/proc/meminfo", "MemTotal:       32617424 kB\nMemFree: 1 kB\n");
  fs.AddFile(absl::StrCat(kCpu, "/online"), "0-11\n");
  for (int cpu = 0; cpu < 12; ++cpu) {
    const std::string dir = absl::StrCat(kCpu, "/cpu", cpu);
    fs.AddFile(dir + "/topology/physical_package_id", "0\n");
    fs.AddFile(dir + "/topology/core_id", absl::StrCat(cpu % 6, "\n"));
    fs.AddFile(dir + "/cpufreq/base_frequency", "3200000\n");
    fs.AddFile(dir + "/cpufreq/cpuinfo_max_freq", "4600000\n");
    const std::string siblings = absl::StrCat(cpu % 6, ",", cpu % 6 + 6);
    const struct {
      const char* index;
      const char* level;
      const char* type;
      const char* size;
      std::string shared;
    } caches[] = {{"index0", "1", "Data", "32K", siblings},
                  {"index1", "1", "Instruction", "32K", siblings},
                  {"index2", "2", "Unified", "256K", siblings},
                  {"index3", "3", "Unified", "12288K", "0-11"}};
    for (const auto& cache : caches) {
      const std::string base = absl::StrCat(dir, "/cache/", cache.index, "/");
      fs.AddFile(base + "level", cache.level);
      fs.AddFile(base + "type", cache.type);
      fs.AddFile(base + "size", cache.size);
      fs.AddFile(base + "shared_cpu_list", cache.shared);
    }
  }
}

TEST(DeviceProbeTest, DesktopFromFullSysfs) {
  InMemoryFileSystem fs;
  AddDesktop(fs);
  absl::StatusOr<DeviceProbe> probe = ProbeDevice(fs);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->cpu_model, "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz");
  EXPECT_EQ(probe->isa, "x86_64");
  EXPECT_EQ(probe->cores, 6);
  EXPECT_EQ(probe->threads, 12);
  EXPECT_DOUBLE_EQ(*probe->base_clock_ghz, 3.2);
  EXPECT_DOUBLE_EQ(*probe->boost_clock_ghz, 4.6);
  EXPECT_THAT(probe->isa_features, ElementsAre("avx", "avx2", "f16c", "fma", "sse4_2"));
  EXPECT_FALSE(probe->virtualized);
  ASSERT_EQ(probe->caches.size(), 4u);
  EXPECT_EQ(probe->caches[2].level, 2);
  EXPECT_EQ(probe->caches[2].instances, 6);
  EXPECT_EQ(probe->caches[3].size_bytes, 12288 * 1024);
  EXPECT_EQ(probe->caches[3].instances, 1);
  EXPECT_EQ(*probe->memory_bytes, int64_t{32617424} * 1024);

  const core::HardwareSpec& spec = probe->spec;
  EXPECT_EQ(spec.category, core::DeviceCategory::kDesktopCpu);
  EXPECT_EQ(spec.isa, "x86_64");
  EXPECT_EQ(*spec.compute_units, 6);
  EXPECT_EQ(*spec.threads, 12);
  EXPECT_DOUBLE_EQ(*spec.l2_mib, 0.25);
  EXPECT_DOUBLE_EQ(*spec.llc_mib, 12);
  EXPECT_NEAR(*spec.memory_gib, 31.1, 0.1);
  EXPECT_THAT(probe->fingerprint, ::testing::MatchesRegex("hw-[0-9a-f]{16}"));
  EXPECT_TRUE(probe->notes.empty()) << probe->notes.front();
}

TEST(DeviceProbeTest, FingerprintIgnoresClockAndSmallMemoryDrift) {
  InMemoryFileSystem a, b;
  AddDesktop(a, "3193.000");
  AddDesktop(b, "800.012");  // another moment, another current clock
  b.AddFile("/proc/meminfo", "MemTotal:       32601000 kB\n");  // another kernel
  EXPECT_EQ(ProbeDevice(a)->fingerprint, ProbeDevice(b)->fingerprint);
}

TEST(DeviceProbeTest, FingerprintChangesWithTheHardware) {
  InMemoryFileSystem base, more_memory, fewer_cpus;
  AddDesktop(base);
  AddDesktop(more_memory);
  more_memory.AddFile("/proc/meminfo", "MemTotal:       65617424 kB\n");
  AddDesktop(fewer_cpus);
  fewer_cpus.AddFile(absl::StrCat(kCpu, "/online"), "0-5\n");
  const std::string fingerprint = ProbeDevice(base)->fingerprint;
  EXPECT_NE(fingerprint, ProbeDevice(more_memory)->fingerprint);
  EXPECT_NE(fingerprint, ProbeDevice(fewer_cpus)->fingerprint);
  EXPECT_THAT(FingerprintCanonicalForm(*ProbeDevice(base)),
              HasSubstr("features=avx,avx2,f16c,fma,sse4_2;cores=6;threads=12;"));
}

// Two machines of one model (a rack, VMs of one template) differ only in their machine
// id; they must not enroll as one device.
TEST(DeviceProbeTest, IdenticalMachinesDifferByTheirMachineId) {
  InMemoryFileSystem first, second;
  AddDesktop(first);
  AddDesktop(second);
  second.AddFile("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
  auto a = ProbeDevice(first), b = ProbeDevice(second);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->fingerprint, b->fingerprint);
  EXPECT_THAT(a->machine_identity, ::testing::MatchesRegex("mid-[0-9a-f]{16}"));
  EXPECT_NE(a->machine_identity, b->machine_identity);
  // The machine id itself does not leave the machine: only its hash is in the form.
  EXPECT_THAT(FingerprintCanonicalForm(*a), HasSubstr(";machine=" + a->machine_identity));
  EXPECT_THAT(FingerprintCanonicalForm(*a), ::testing::Not(HasSubstr(kMachineId)));
  // The same machine probed again (another boot) keeps its fingerprint.
  EXPECT_EQ(a->fingerprint, ProbeDevice(first)->fingerprint);
}

TEST(DeviceProbeTest, MachineIdFallsBackToDbus) {
  InMemoryFileSystem etc, dbus;
  AddDesktop(etc);
  // A machine with only the D-Bus copy (older distributions, some containers).
  dbus.AddFile("/proc/cpuinfo", *etc.ReadFile("/proc/cpuinfo"));
  AddDesktop(dbus);
  dbus.AddFile("/etc/machine-id", "uninitialized\n");  // systemd's first-boot marker
  dbus.AddFile("/var/lib/dbus/machine-id", std::string(kMachineId) + "\n");
  auto a = ProbeDevice(etc), b = ProbeDevice(dbus);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->machine_identity, b->machine_identity);
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_THAT(b->notes, ElementsAre(HasSubstr("/etc/machine-id holds no machine id")));
}

TEST(DeviceProbeTest, WithoutAMachineIdTheFingerprintIsTheHardwaresAndANoteSaysSo) {
  InMemoryFileSystem with_id;
  AddDesktop(with_id);
  InMemoryFileSystem without;
  AddDesktop(without);
  without.AddFile("/etc/machine-id", "");  // an image with the id cleared
  auto a = ProbeDevice(with_id), b = ProbeDevice(without);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(b->machine_identity.empty());
  EXPECT_NE(a->fingerprint, b->fingerprint);
  EXPECT_THAT(FingerprintCanonicalForm(*b), ::testing::Not(HasSubstr("machine")));
  // The form (and so the fingerprint) is then what agents before machine identities made.
  DeviceProbe old_form = *a;
  old_form.machine_identity.clear();
  EXPECT_EQ(HardwareFingerprint(old_form), b->fingerprint);
  EXPECT_THAT(FingerprintCanonicalForm(*b), ::testing::EndsWith(";memory_gib=31"));
  EXPECT_THAT(b->notes,
              ::testing::Contains(HasSubstr("identical machines share this fingerprint")));
}

TEST(DeviceProbeTest, RaspberryPiIsAnEdgeCpu) {
  InMemoryFileSystem fs;
  std::string cpuinfo;
  for (int i = 0; i < 4; ++i) {
    absl::StrAppend(&cpuinfo, "processor\t: ", i,
                    "\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
                    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd08\n\n");
  }
  fs.AddFile("/proc/cpuinfo", cpuinfo);
  fs.AddFile("/proc/meminfo", "MemTotal:        3884836 kB\n");
  fs.AddFile("/sys/firmware/devicetree/base/model",
             std::string("Raspberry Pi 4 Model B Rev 1.4\0", 31));
  fs.AddFile(absl::StrCat(kCpu, "/online"), "0-3\n");
  for (int cpu = 0; cpu < 4; ++cpu) {
    const std::string dir = absl::StrCat(kCpu, "/cpu", cpu);
    fs.AddFile(dir + "/topology/physical_package_id", "0");
    fs.AddFile(dir + "/topology/core_id", absl::StrCat(cpu));
    fs.AddFile(dir + "/cpufreq/cpuinfo_max_freq", "1500000");
  }
  absl::StatusOr<DeviceProbe> probe = ProbeDevice(fs);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->cpu_model, "ARM Cortex-A72");
  EXPECT_EQ(probe->board, "Raspberry Pi 4 Model B Rev 1.4");
  EXPECT_EQ(probe->isa, "aarch64");
  EXPECT_EQ(probe->cores, 4);
  EXPECT_THAT(probe->isa_features, ElementsAre("asimd"));
  EXPECT_DOUBLE_EQ(*probe->base_clock_ghz, 1.5);
  EXPECT_FALSE(probe->boost_clock_ghz.has_value());
  EXPECT_EQ(probe->spec.category, core::DeviceCategory::kEdgeCpu);
  EXPECT_FALSE(probe->spec.llc_mib.has_value());
  EXPECT_THAT(probe->notes, testing::Contains(HasSubstr("caches")));
}

TEST(DeviceProbeTest, VirtualMachineWithoutSysfsFallsBackToCpuinfo) {
  InMemoryFileSystem fs;
  fs.AddFile("/proc/cpuinfo",
             "processor\t: 0\nmodel name\t: AMD EPYC\nphysical id\t: 0\ncpu cores\t: 2\n"
             "cpu MHz\t\t: 2096.033\nflags\t\t: lm avx2 avx512f hypervisor\n\n"
             "processor\t: 1\nmodel name\t: AMD EPYC\nphysical id\t: 0\ncpu cores\t: 2\n"
             "cpu MHz\t\t: 2096.033\nflags\t\t: lm avx2 avx512f hypervisor\n\n");
  absl::StatusOr<DeviceProbe> probe = ProbeDevice(fs);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->threads, 2);
  EXPECT_EQ(probe->cores, 2);
  EXPECT_TRUE(probe->virtualized);
  EXPECT_NEAR(*probe->base_clock_ghz, 2.096, 1e-3);
  EXPECT_FALSE(probe->memory_bytes.has_value());
  EXPECT_EQ(probe->spec.category, core::DeviceCategory::kDesktopCpu);
  EXPECT_THAT(probe->notes, testing::Contains(HasSubstr("cpu MHz")));
  EXPECT_THAT(probe->notes, testing::Contains(HasSubstr("memory")));
}

TEST(DeviceProbeTest, FailsWithoutCpuinfo) {
  InMemoryFileSystem fs;
  EXPECT_EQ(ProbeDevice(fs).status().code(), absl::StatusCode::kFailedPrecondition);
  fs.AddFile("/proc/cpuinfo", "garbage\n");
  EXPECT_EQ(ProbeDevice(fs).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ClassifyDeviceTest, FollowsTheDocumentedRules) {
  DeviceProbe atom;
  atom.isa = "x86_64";
  atom.cores = 4;
  atom.isa_features = {"sse4_2"};
  EXPECT_EQ(ClassifyDevice(atom), core::DeviceCategory::kEdgeCpu);
  DeviceProbe server_arm;
  server_arm.isa = "aarch64";
  server_arm.cores = 64;
  EXPECT_EQ(ClassifyDevice(server_arm), core::DeviceCategory::kDesktopCpu);
  DeviceProbe mystery;
  mystery.isa = "unknown";
  EXPECT_EQ(ClassifyDevice(mystery), core::DeviceCategory::kUnknown);
}

TEST(DeviceProbeTest, ProbesThisMachine) {
  absl::StatusOr<DeviceProbe> first = ProbeDevice(RealFileSystem());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GE(first->threads, 1);
  EXPECT_GE(first->threads, first->cores);
  EXPECT_NE(first->spec.category, core::DeviceCategory::kUnknown);
  EXPECT_EQ(first->fingerprint, ProbeDevice(RealFileSystem())->fingerprint);
}

}  // namespace
}  // namespace maplex::agent

#include "agent/probe/device_probe.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace maplex::agent {
namespace {

constexpr char kCpuDir[] = "/sys/devices/system/cpu";

// Features that change which kernels a runtime can use.
const std::set<std::string>& RelevantFeatures() {
  static const auto* features = new std::set<std::string>{
      // x86
      "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
      "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
      // ARM
      "neon", "asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2", "i8mm", "bf16", "sme"};
  return *features;
}

// /proc/cpuinfo as the first value of each key plus the number of "processor" entries.
struct CpuInfo {
  std::map<std::string, std::string> first;
  std::set<std::string> physical_ids;
  int processors = 0;
  double max_mhz = 0;
};

CpuInfo ParseCpuInfo(const std::string& text) {
  CpuInfo info;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    std::string key(absl::StripAsciiWhitespace(line.substr(0, colon)));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (key == "processor") ++info.processors;
    if (key == "physical id") info.physical_ids.insert(value);
    double mhz;
    if (key == "cpu MHz" && absl::SimpleAtod(value, &mhz))
      info.max_mhz = std::max(info.max_mhz, mhz);
    info.first.emplace(key, value);
  }
  return info;
}

std::string Get(const CpuInfo& info, const std::string& key) {
  auto it = info.first.find(key);
  return it == info.first.end() ? "" : it->second;
}

// 64-bit FNV-1a: the same value across compilers and builds, unlike std::hash.
uint64_t Fnv1a64(absl::string_view text) {
  uint64_t hash = 14695981039346656037ull;  // offset basis
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::optional<std::string> ReadTrimmed(const FileSystem& fs, const std::string& path) {
  absl::StatusOr<std::string> content = fs.ReadFile(path);
  if (!content.ok()) return std::nullopt;
  // Device-tree strings end in NUL.
  std::string value(absl::StripAsciiWhitespace(*content));
  value.erase(std::find(value.begin(), value.end(), '\0'), value.end());
  return value;
}

std::optional<int64_t> ReadInt(const FileSystem& fs, const std::string& path) {
  std::optional<std::string> text = ReadTrimmed(fs, path);
  int64_t value;
  if (!text || !absl::SimpleAtoi(*text, &value)) return std::nullopt;
  return value;
}

// "0-3,6,8-9" -> {0,1,2,3,6,8,9}. Empty on malformed input.
std::vector<int> ParseCpuList(absl::string_view list) {
  std::vector<int> cpus;
  for (absl::string_view range : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> bounds = absl::StrSplit(range, '-');
    int lo, hi;
    if (!absl::SimpleAtoi(bounds.first, &lo)) return {};
    if (bounds.second.empty()) {
      hi = lo;
    } else if (!absl::SimpleAtoi(bounds.second, &hi) || hi < lo) {
      return {};
    }
    for (int cpu = lo; cpu <= hi; ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

// sysfs cache sizes: "48K", "1024K", "32768K", occasionally "2M".
std::optional<int64_t> ParseCacheSize(absl::string_view text) {
  int64_t multiplier = 1;
  if (absl::ConsumeSuffix(&text, "K"))
    multiplier = 1024;
  else if (absl::ConsumeSuffix(&text, "M"))
    multiplier = 1024 * 1024;
  int64_t value;
  if (!absl::SimpleAtoi(text, &value) || value <= 0) return std::nullopt;
  return value * multiplier;
}

std::string DetectIsa(const CpuInfo& info) {
  if (info.first.count("flags")) {
    return absl::StrContains(absl::StrCat(" ", Get(info, "flags"), " "), " lm ") ? "x86_64" : "x86";
  }
  if (info.first.count("Features")) {
    const std::string features = absl::StrCat(" ", Get(info, "Features"), " ");
    if (Get(info, "CPU architecture") == "8" || absl::StrContains(features, " asimd ")) {
      return "aarch64";
    }
    return "armv7";
  }
  const std::string risc = Get(info, "isa");
  if (absl::StartsWith(risc, "rv64")) return "riscv64";
  if (absl::StartsWith(risc, "rv32")) return "riscv32";
  return "unknown";
}

// ARM kernels often print no model name; the implementer/part pair names the core.
std::string ArmCoreName(const CpuInfo& info) {
  static const auto* parts = new std::map<std::string, std::string>{
      {"0xd03", "Cortex-A53"}, {"0xd04", "Cortex-A35"},  {"0xd05", "Cortex-A55"},
      {"0xd07", "Cortex-A57"}, {"0xd08", "Cortex-A72"},  {"0xd09", "Cortex-A73"},
      {"0xd0a", "Cortex-A75"}, {"0xd0b", "Cortex-A76"},  {"0xd0c", "Neoverse-N1"},
      {"0xd0d", "Cortex-A77"}, {"0xd40", "Neoverse-V1"}, {"0xd41", "Cortex-A78"},
      {"0xd44", "Cortex-X1"},  {"0xd49", "Neoverse-N2"}, {"0xd4f", "Neoverse-V2"}};
  const std::string implementer = Get(info, "CPU implementer");
  const std::string part = Get(info, "CPU part");
  if (implementer.empty() && part.empty()) return "";
  auto it = parts->find(part);
  if (implementer == "0x41" && it != parts->end()) return absl::StrCat("ARM ", it->second);
  return absl::StrCat("implementer ", implementer, " part ", part);
}

// "... CPU @ 3.20GHz" -> 3.2
std::optional<double> ClockFromModelName(const std::string& model) {
  size_t at = model.rfind('@');
  if (at == std::string::npos) return std::nullopt;
  absl::string_view rest = absl::StripAsciiWhitespace(absl::string_view(model).substr(at + 1));
  if (!absl::ConsumeSuffix(&rest, "GHz")) return std::nullopt;
  double ghz;
  if (!absl::SimpleAtod(rest, &ghz) || ghz <= 0) return std::nullopt;
  return ghz;
}

std::vector<CacheLevel> ProbeCaches(const FileSystem& fs, const std::vector<int>& cpus) {
  // (level, type) -> size and the distinct sharing sets seen.
  std::map<std::pair<int, std::string>, std::pair<int64_t, std::set<std::string>>> seen;
  for (int cpu : cpus) {
    const std::string dir = absl::StrCat(kCpuDir, "/cpu", cpu, "/cache");
    absl::StatusOr<std::vector<std::string>> entries = fs.ListDirectory(dir);
    if (!entries.ok()) continue;
    for (const std::string& entry : *entries) {
      if (!absl::StartsWith(entry, "index")) continue;
      const std::string base = absl::StrCat(dir, "/", entry, "/");
      std::optional<int64_t> level = ReadInt(fs, base + "level");
      std::optional<std::string> type = ReadTrimmed(fs, base + "type");
      std::optional<std::string> size_text = ReadTrimmed(fs, base + "size");
      std::optional<int64_t> size = size_text ? ParseCacheSize(*size_text) : std::nullopt;
      if (!level || !type || !size) continue;
      std::string shared = ReadTrimmed(fs, base + "shared_cpu_list")
                               .value_or(absl::StrCat(cpu));  // unknown: assume private
      auto& slot = seen[{static_cast<int>(*level), *type}];
      slot.first = *size;
      slot.second.insert(shared);
    }
  }
  std::vector<CacheLevel> caches;
  for (const auto& [key, value] : seen) {
    caches.push_back({key.first, key.second, value.first, static_cast<int>(value.second.size())});
  }
  return caches;
}

double RoundMemoryGib(int64_t bytes) {
  const double gib = bytes / double(1 << 30);
  return gib < 2 ? std::round(gib * 4) / 4 : std::round(gib);
}

}  // namespace

absl::StatusOr<DeviceProbe> ProbeDevice(const FileSystem& fs) {
  absl::StatusOr<std::string> cpuinfo_text = fs.ReadFile("/proc/cpuinfo");
  if (!cpuinfo_text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device probe needs /proc/cpuinfo: ", cpuinfo_text.status().message()));
  }
  const CpuInfo info = ParseCpuInfo(*cpuinfo_text);
  if (info.processors == 0) {
    return absl::FailedPreconditionError("/proc/cpuinfo lists no processor");
  }
  DeviceProbe probe;
  probe.isa = DetectIsa(info);

  // Model and board.
  probe.cpu_model = Get(info, "model name");
  if (probe.cpu_model.empty()) probe.cpu_model = ArmCoreName(info);
  if (probe.cpu_model.empty()) probe.cpu_model = Get(info, "uarch");  // RISC-V
  if (probe.cpu_model.empty()) probe.notes.push_back("cpu model: not in /proc/cpuinfo");
  probe.board = ReadTrimmed(fs, "/sys/firmware/devicetree/base/model").value_or("");

  // Features.
  std::string flags = Get(info, "flags");
  if (flags.empty()) flags = Get(info, "Features");
  std::set<std::string> features;
  for (absl::string_view flag : absl::StrSplit(flags, ' ', absl::SkipWhitespace())) {
    if (RelevantFeatures().count(std::string(flag))) features.insert(std::string(flag));
    if (flag == "hypervisor") probe.virtualized = true;
  }
  probe.isa_features.assign(features.begin(), features.end());

  // Logical CPUs and physical cores.
  std::vector<int> cpus;
  if (std::optional<std::string> online = ReadTrimmed(fs, absl::StrCat(kCpuDir, "/online"))) {
    cpus = ParseCpuList(*online);
  }
  if (cpus.empty()) {
    probe.notes.push_back(
        "threads: /sys/devices/system/cpu/online unreadable, counted "
        "processors in /proc/cpuinfo");
    for (int cpu = 0; cpu < info.processors; ++cpu) cpus.push_back(cpu);
  }
  probe.threads = static_cast<int>(cpus.size());
  std::set<std::pair<int64_t, int64_t>> physical_cores;
  for (int cpu : cpus) {
    const std::string topology = absl::StrCat(kCpuDir, "/cpu", cpu, "/topology/");
    std::optional<int64_t> package = ReadInt(fs, topology + "physical_package_id");
    std::optional<int64_t> core = ReadInt(fs, topology + "core_id");
    if (!package || !core) {
      physical_cores.clear();
      break;
    }
    physical_cores.insert({*package, *core});
  }
  int64_t cores_per_package;
  if (!physical_cores.empty()) {
    probe.cores = static_cast<int>(physical_cores.size());
  } else if (absl::SimpleAtoi(Get(info, "cpu cores"), &cores_per_package)) {
    probe.cores =
        static_cast<int>(cores_per_package * std::max<size_t>(1, info.physical_ids.size()));
    probe.notes.push_back("cores: from /proc/cpuinfo 'cpu cores' (no sysfs topology)");
  } else {
    probe.cores = probe.threads;
    probe.notes.push_back("cores: no topology anywhere, assumed one thread per core");
  }

  // Clocks. sysfs cpufreq is in kHz.
  const std::string freq = absl::StrCat(kCpuDir, "/cpu", cpus.front(), "/cpufreq/");
  std::optional<int64_t> max_khz;
  for (int cpu : cpus) {  // big.LITTLE: the fastest cluster sets the boost clock
    std::optional<int64_t> khz =
        ReadInt(fs, absl::StrCat(kCpuDir, "/cpu", cpu, "/cpufreq/cpuinfo_max_freq"));
    if (khz && (!max_khz || *khz > *max_khz)) max_khz = khz;
  }
  if (std::optional<int64_t> base_khz = ReadInt(fs, freq + "base_frequency")) {
    probe.base_clock_ghz = *base_khz / 1e6;
  } else if (std::optional<double> ghz = ClockFromModelName(probe.cpu_model)) {
    probe.base_clock_ghz = ghz;
  } else if (max_khz) {
    // ARM boards state one nominal clock, the top of the cpufreq range.
    probe.base_clock_ghz = *max_khz / 1e6;
  } else if (info.max_mhz > 0) {
    probe.base_clock_ghz = info.max_mhz / 1e3;
    probe.notes.push_back(
        "base clock: no cpufreq in sysfs (VM?), used /proc/cpuinfo "
        "'cpu MHz', the current clock");
  } else {
    probe.notes.push_back("base clock: unknown");
  }
  if (max_khz && (!probe.base_clock_ghz || *max_khz / 1e6 > *probe.base_clock_ghz + 1e-9)) {
    probe.boost_clock_ghz = *max_khz / 1e6;
  }

  // Caches.
  probe.caches = ProbeCaches(fs, cpus);
  if (probe.caches.empty()) {
    probe.notes.push_back("caches: no /sys/devices/system/cpu/cpuN/cache (VM?)");
  }

  // Memory.
  if (absl::StatusOr<std::string> meminfo = fs.ReadFile("/proc/meminfo"); meminfo.ok()) {
    for (absl::string_view line : absl::StrSplit(*meminfo, '\n')) {
      if (!absl::ConsumePrefix(&line, "MemTotal:")) continue;
      line = absl::StripAsciiWhitespace(line);
      int64_t kib;
      if (absl::ConsumeSuffix(&line, " kB") && absl::SimpleAtoi(line, &kib)) {
        probe.memory_bytes = kib * 1024;
      }
    }
  }
  if (!probe.memory_bytes) probe.notes.push_back("memory: MemTotal not in /proc/meminfo");

  // The core spec.
  core::HardwareSpec& spec = probe.spec;
  spec.category = ClassifyDevice(probe);
  spec.isa = probe.isa;
  spec.compute_units = probe.cores;
  spec.threads = probe.threads;
  spec.base_clock_ghz = probe.base_clock_ghz;
  spec.boost_clock_ghz = probe.boost_clock_ghz;
  int top_level = 0;
  for (const CacheLevel& cache : probe.caches) {
    if (cache.type == "Instruction") continue;
    // l2_mib is one core's L2; llc_mib is the last level summed over its instances.
    if (cache.level == 2) spec.l2_mib = cache.size_bytes / double(1 << 20);
    if (cache.level >= top_level) {
      top_level = cache.level;
      spec.llc_mib = cache.size_bytes * double(cache.instances) / double(1 << 20);
    }
  }
  if (probe.memory_bytes) spec.memory_gib = *probe.memory_bytes / double(1 << 30);
  // Machine identity: without it, identical machines would be one device.
  for (const char* path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    std::optional<std::string> id = ReadTrimmed(fs, path);
    if (!id) continue;
    const bool valid = id->size() == 32 && std::all_of(id->begin(), id->end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                       });
    if (!valid) {  // "uninitialized" during a first boot, or an empty file in an image
      probe.notes.push_back(absl::StrCat("machine identity: ", path, " holds no machine id"));
      continue;
    }
    probe.machine_identity = absl::StrFormat("mid-%016x", Fnv1a64(absl::StrCat("maplex:", *id)));
    break;
  }
  if (probe.machine_identity.empty()) {
    probe.notes.push_back(
        "machine identity: no /etc/machine-id or /var/lib/dbus/machine-id; identical machines "
        "share this fingerprint (give each its own --device_id)");
  }
  probe.fingerprint = HardwareFingerprint(probe);
  return probe;
}

std::string FingerprintCanonicalForm(const DeviceProbe& probe) {
  std::vector<std::string> caches;
  for (const CacheLevel& cache : probe.caches) {
    caches.push_back(absl::StrCat("L", cache.level, cache.type.substr(0, 1), ":", cache.size_bytes,
                                  "x", cache.instances));
  }
  return absl::StrCat(
      "model=", probe.cpu_model, ";board=", probe.board, ";isa=", probe.isa,
      ";features=", absl::StrJoin(probe.isa_features, ","), ";cores=", probe.cores,
      ";threads=", probe.threads, ";caches=", absl::StrJoin(caches, ","), ";memory_gib=",
      probe.memory_bytes ? absl::StrCat(RoundMemoryGib(*probe.memory_bytes)) : "unknown",
      // Without a machine identity the form is what agents before it hashed, so their
      // devices keep their fingerprint (maplex-agent --machine_identity=false).
      probe.machine_identity.empty() ? "" : absl::StrCat(";machine=", probe.machine_identity));
}

std::string HardwareFingerprint(const DeviceProbe& probe) {
  return absl::StrFormat("hw-%016x", Fnv1a64(FingerprintCanonicalForm(probe)));
}

core::DeviceCategory ClassifyDevice(const DeviceProbe& probe) {
  const auto has = [&](const char* feature) {
    return std::binary_search(probe.isa_features.begin(), probe.isa_features.end(),
                              std::string(feature));
  };
  if (probe.isa == "aarch64") {
    return probe.cores >= 32 && probe.board.empty() ? core::DeviceCategory::kDesktopCpu
                                                    : core::DeviceCategory::kEdgeCpu;
  }
  if (probe.isa == "armv7" || absl::StartsWith(probe.isa, "riscv")) {
    return core::DeviceCategory::kEdgeCpu;
  }
  if (probe.isa == "x86_64" || probe.isa == "x86") {
    if (!has("avx2") && probe.cores <= 4) return core::DeviceCategory::kEdgeCpu;
    return core::DeviceCategory::kDesktopCpu;
  }
  return core::DeviceCategory::kUnknown;
}

}  // namespace maplex::agent

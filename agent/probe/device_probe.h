// Device probe: what the operating system says about the processor this agent runs on,
// turned into a core::HardwareSpec plus a stable hardware fingerprint.
//
//   absl::StatusOr<DeviceProbe> probe = ProbeDevice(RealFileSystem());
//   if (probe.ok()) Enroll(probe->fingerprint, probe->spec);
//
// Sources (Linux): /proc/cpuinfo (model, ISA, feature flags, fallback counts and clock),
// /sys/devices/system/cpu/{online,cpuN/topology,cpuN/cache,cpuN/cpufreq} (cores, caches,
// clocks), /proc/meminfo (memory), /sys/firmware/devicetree/base/model (board name on
// ARM boards), /etc/machine-id or else /var/lib/dbus/machine-id (machine identity).
// Every figure that could not be read stays nullopt and a note says why;
// nothing is guessed.
#ifndef MAPLEX_AGENT_PROBE_DEVICE_PROBE_H_
#define MAPLEX_AGENT_PROBE_DEVICE_PROBE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/probe/file_system.h"
#include "core/hardware/descriptor.h"

namespace maplex::agent {

struct CacheLevel {
  int level = 0;
  std::string type;        // "Data", "Instruction", "Unified"
  int64_t size_bytes = 0;  // one instance
  int instances = 0;       // distinct copies among online CPUs (1 = shared by all)
};

struct DeviceProbe {
  std::string cpu_model;  // "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "ARM Cortex-A72"
  std::string board;      // device-tree board model, empty when there is none
  std::string isa;        // "x86_64", "x86", "aarch64", "armv7", "riscv64" or "unknown"
  int cores = 0;          // physical cores among the online CPUs
  int threads = 0;        // online logical CPUs
  std::optional<double> base_clock_ghz;
  std::optional<double> boost_clock_ghz;
  std::vector<CacheLevel> caches;  // sorted by level, then type
  std::optional<int64_t> memory_bytes;
  // Only the features that matter for neural-network kernels (SIMD width, FMA, dot
  // products, low precision), sorted. The full flag list is not kept: it carries
  // kernel- and microcode-dependent entries (bug mitigations, "hypervisor") that would
  // change the fingerprint across reboots and upgrades.
  std::vector<std::string> isa_features;
  bool virtualized = false;  // the CPU reports the "hypervisor" flag
  // Which machine this is, so that two identical machines (same CPU, caches and memory:
  // a rack of one model, VMs of one template) do not merge into one device: "mid-" + the
  // 64-bit FNV-1a hash of the OS's machine id (/etc/machine-id, else
  // /var/lib/dbus/machine-id; 32 hex digits, set once at install). Hashed because the
  // machine id itself is meant to stay on the machine (machine-id(5)). Empty when neither
  // file holds one (a note says so): the fingerprint is then the hardware's alone, and
  // identical machines share it; give each its own --device_id.
  std::string machine_identity;
  core::HardwareSpec spec;
  // "hw-" + 16 hex digits; see HardwareFingerprint().
  std::string fingerprint;
  // Which fallbacks were taken and which figures are missing, for the operator.
  std::vector<std::string> notes;
};

// Reads the device description from `fs`. Fails (FailedPrecondition) only when
// /proc/cpuinfo cannot be read or names no processor; any other missing source leaves
// its fields empty with a note.
absl::StatusOr<DeviceProbe> ProbeDevice(const FileSystem& fs);

// The text the fingerprint hashes: model, board, ISA, features, cores, threads, caches,
// memory rounded to whole GiB (quarter GiB below 2 GiB) because MemTotal moves by a few
// MiB between kernels, and the machine identity when there is one (without it, the form
// agents before machine identities hashed: their fingerprints stay). Clocks are left
// out: in VMs the only clock is the current one. No hostname, no serial numbers, nothing
// that changes across reboots.
std::string FingerprintCanonicalForm(const DeviceProbe& probe);

// "hw-" + the 64-bit FNV-1a hash of FingerprintCanonicalForm() in hex. FNV-1a rather than
// std::hash so the value is the same across compilers and builds.
std::string HardwareFingerprint(const DeviceProbe& probe);

// Device category by ISA, the only signal the OS gives reliably:
//   aarch64 / armv7 / riscv*          -> kEdgeCpu (boards, phones' SoCs), except aarch64 with
//                                        >= 32 cores and no device-tree board (ARM servers)
//                                        -> kDesktopCpu;
//   x86 / x86_64 with AVX2            -> kDesktopCpu (desktops, laptops and servers; the
//                                        public data has no server class);
//   x86 without AVX2 and <= 4 cores   -> kEdgeCpu (Atom / Celeron embedded parts);
//   anything else                     -> kUnknown.
core::DeviceCategory ClassifyDevice(const DeviceProbe& probe);

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_PROBE_DEVICE_PROBE_H_

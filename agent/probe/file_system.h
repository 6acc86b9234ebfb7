// The slice of the file system the device probe reads: whole small files (/proc, /sys)
// and directory listings. Tests pass an InMemoryFileSystem holding a fake /proc and /sys
// tree, so the probe can be checked against machines we do not have (an ARM board, a
// desktop with cpufreq) without touching the host.
//
//   InMemoryFileSystem fs;
//   fs.AddFile("/proc/meminfo", "MemTotal: 16318136 kB\n");
//   absl::StatusOr<DeviceProbe> probe = ProbeDevice(fs);
#ifndef MAPLEX_AGENT_PROBE_FILE_SYSTEM_H_
#define MAPLEX_AGENT_PROBE_FILE_SYSTEM_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace maplex::agent {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // The whole content of the file at `path`. NotFound if it does not exist; another error
  // if it cannot be read.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) const = 0;
  // Names (not paths) of the entries directly under `path`, sorted; NotFound if `path` is
  // not a directory.
  virtual absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) const = 0;
};

// The host's file system. Thread-safe; not owned by the caller.
const FileSystem& RealFileSystem();

// Files held in memory; directories exist implicitly as prefixes of file paths.
class InMemoryFileSystem : public FileSystem {
 public:
  void AddFile(const std::string& path, const std::string& content);
  absl::StatusOr<std::string> ReadFile(const std::string& path) const override;
  absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) const override;

 private:
  std::map<std::string, std::string> files_;
};

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_PROBE_FILE_SYSTEM_H_

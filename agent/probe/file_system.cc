#include "agent/probe/file_system.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

class PosixFileSystem : public FileSystem {
 public:
  absl::StatusOr<std::string> ReadFile(const std::string& path) const override {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    // /proc and /sys files report size 0, so read by stream rather than by stat size.
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
    return content.str();
  }

  absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) const override {
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) {
      return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    std::vector<std::string> names;
    while (const dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }
};

}  // namespace

const FileSystem& RealFileSystem() {
  static const PosixFileSystem* fs = new PosixFileSystem();
  return *fs;
}

void InMemoryFileSystem::AddFile(const std::string& path, const std::string& content) {
  files_[path] = content;
}

absl::StatusOr<std::string> InMemoryFileSystem::ReadFile(const std::string& path) const {
  auto it = files_.find(path);
  if (it == files_.end()) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  return it->second;
}

absl::StatusOr<std::vector<std::string>> InMemoryFileSystem::ListDirectory(
    const std::string& path) const {
  const std::string prefix = absl::EndsWith(path, "/") ? path : path + "/";
  std::set<std::string> names;
  for (auto it = files_.lower_bound(prefix);
       it != files_.end() && absl::StartsWith(it->first, prefix); ++it) {
    std::string rest = it->first.substr(prefix.size());
    names.insert(rest.substr(0, rest.find('/')));
  }
  if (names.empty()) return absl::NotFoundError(absl::StrCat(path, ": no such directory"));
  return std::vector<std::string>(names.begin(), names.end());
}

}  // namespace maplex::agent

#include "bench/data_files.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "core/dataset/latency_table.h"

namespace maplex::bench {

absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::string contents;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) contents.append(buffer, n);
  int error = Z_OK;
  const char* message = gzerror(file, &error);
  const std::string reason = message ? message : "";
  gzclose(file);
  if (n < 0 || (error != Z_OK && error != Z_STREAM_END)) {
    return absl::DataLossError(absl::StrCat("reading ", path, ": ", reason));
  }
  return contents;
}

absl::StatusOr<std::vector<core::DeviceData>> LoadLatencyData(const std::string& latency_path,
                                                              const std::string& devices_path) {
  absl::StatusOr<std::string> latency = ReadMaybeGzippedFile(latency_path);
  if (!latency.ok()) return latency.status();
  absl::StatusOr<std::string> devices = ReadMaybeGzippedFile(devices_path);
  if (!devices.ok()) return devices.status();
  absl::StatusOr<std::vector<core::DeviceData>> parsed =
      core::ParseLatencyTable(*latency, *devices, core::Nb201Space::Get());
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(latency_path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::Status WriteTextFile(const std::string& path, const std::string& contents) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  const size_t written = std::fwrite(contents.data(), 1, contents.size(), f);
  const bool closed = std::fclose(f) == 0;
  if (written != contents.size() || !closed) {
    return absl::InternalError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

}  // namespace maplex::bench

#include "client/data_files.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "core/dataset/latency_table.h"

namespace maplex::client {

absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::string contents;
  char buffer[1 << 16];
  while (true) {
    int n = gzread(file, buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      std::string message = gzerror(file, &code);
      gzclose(file);
      return absl::DataLossError(absl::StrCat(path, ": ", message));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  // A truncated gzip stream reads as a short file; gzclose reports it.
  if (int rc = gzclose(file); rc != Z_OK) {
    return absl::DataLossError(absl::StrCat(path, ": compressed stream is truncated or corrupt"));
  }
  return contents;
}

namespace {

// The devices CSV at `path`; an empty path: a devices CSV without rows (nothing known).
absl::StatusOr<std::string> ReadDevicesCsv(const std::string& path) {
  if (path.empty()) return std::string("device\n");
  return ReadMaybeGzippedFile(path);
}

}  // namespace

absl::StatusOr<core::SpaceLatencyTable> LoadSpaceLatencyData(const std::string& latency_path,
                                                             const std::string& devices_path) {
  absl::StatusOr<std::string> latency = ReadMaybeGzippedFile(latency_path);
  if (!latency.ok()) return latency.status();
  absl::StatusOr<std::string> devices_csv = ReadDevicesCsv(devices_path);
  if (!devices_csv.ok()) return devices_csv.status();
  absl::StatusOr<core::SpaceLatencyTable> parsed =
      core::ParseSpaceLatencyTable(*latency, *devices_csv);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(latency_path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::StatusOr<std::vector<core::DeviceData>> LoadLatencyData(const std::string& latency_path,
                                                              const std::string& devices_path) {
  absl::StatusOr<std::string> latency = ReadMaybeGzippedFile(latency_path);
  if (!latency.ok()) return latency.status();
  absl::StatusOr<std::string> devices = ReadDevicesCsv(devices_path);
  if (!devices.ok()) return devices.status();
  const std::string devices_csv = *std::move(devices);
  absl::StatusOr<std::vector<core::DeviceData>> parsed =
      core::ParseLatencyTable(*latency, devices_csv, core::Nb201Space::Get());
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(latency_path, ": ", parsed.status().message()));
  }
  return parsed;
}

absl::Status WriteTextFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace maplex::client

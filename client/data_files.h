// Reading the data files users hand to maplex (plain or gzip-compressed text), and the
// bundled latency data as core::DeviceData.
//
//   absl::StatusOr<std::vector<core::DeviceData>> devices =
//       LoadLatencyData("data/nb201_latency.csv.gz", "data/nb201_devices.csv");
#ifndef MAPLEX_CLIENT_DATA_FILES_H_
#define MAPLEX_CLIENT_DATA_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dataset/latency_table.h"
#include "core/model/latency_model.h"

namespace maplex::client {

// The whole file; a gzip file is decompressed (zlib reads a plain file unchanged).
// NotFound when it cannot be opened, DataLoss on a corrupt compressed stream.
absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path);

// A wide latency CSV and its devices CSV (an empty devices path: none), parsed; errors
// name the file.
absl::StatusOr<std::vector<core::DeviceData>> LoadLatencyData(const std::string& latency_path,
                                                              const std::string& devices_path);

// A latency table of any registered space (core::ParseSpaceLatencyTable: `arch,<device>...`
// with canonical strings, e.g. data/fbnet_latency.csv.gz, or NB201's
// `arch_index,arch_str,...`), the space detected from the first row; errors name the file.
absl::StatusOr<core::SpaceLatencyTable> LoadSpaceLatencyData(const std::string& latency_path,
                                                             const std::string& devices_path);

// Writes `contents` to `path`, replacing it. Internal error naming the path on failure.
absl::Status WriteTextFile(const std::string& path, const std::string& contents);

}  // namespace maplex::client

#endif  // MAPLEX_CLIENT_DATA_FILES_H_

// File access for the harness and benchmarks (core/ does no I/O): read a file, gunzipping
// it when it is gzip-compressed, and load the bundled latency data into DeviceData.
//
//   absl::StatusOr<std::vector<DeviceData>> devices =
//       LoadLatencyData("data/nb201_latency.csv.gz", "data/nb201_devices.csv");
#ifndef MAPLEX_BENCH_DATA_FILES_H_
#define MAPLEX_BENCH_DATA_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/latency_model.h"

namespace maplex::bench {

// The whole file; gzip files are decompressed (zlib reads plain files unchanged).
// NotFound when it cannot be opened, DataLoss on a corrupt stream.
absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path);

absl::StatusOr<std::vector<core::DeviceData>> LoadLatencyData(const std::string& latency_path,
                                                              const std::string& devices_path);

// Writes `contents` to `path` (replacing it). Internal error naming the path on failure.
absl::Status WriteTextFile(const std::string& path, const std::string& contents);

}  // namespace maplex::bench

#endif  // MAPLEX_BENCH_DATA_FILES_H_

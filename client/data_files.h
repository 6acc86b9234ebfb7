// Reading the data files users hand to maplex: plain or gzip-compressed text.
#ifndef MAPLEX_CLIENT_DATA_FILES_H_
#define MAPLEX_CLIENT_DATA_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace maplex::client {

// The whole file; a gzip file is decompressed (zlib reads a plain file unchanged).
// NotFound when it cannot be opened, DataLoss on a corrupt compressed stream.
absl::StatusOr<std::string> ReadMaybeGzippedFile(const std::string& path);

// Writes `contents` to `path`, replacing it. Internal error naming the path on failure.
absl::Status WriteTextFile(const std::string& path, const std::string& contents);

}  // namespace maplex::client

#endif  // MAPLEX_CLIENT_DATA_FILES_H_

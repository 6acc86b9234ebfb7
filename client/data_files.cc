#include "client/data_files.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

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

absl::Status WriteTextFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace maplex::client

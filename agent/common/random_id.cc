#include "agent/common/random_id.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace maplex::agent {
namespace {

absl::Status ReadDevUrandom(unsigned char* out, size_t size) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("/dev/urandom: ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      close(fd);
      return absl::UnavailableError(absl::StrCat("/dev/urandom: ", std::strerror(error)));
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::Status FillRandomBytes(void* out, size_t size) {
  unsigned char* bytes = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < size) {
    ssize_t n = getrandom(bytes + done, size - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOSYS) return ReadDevUrandom(bytes + done, size - done);
      return absl::UnavailableError(absl::StrCat("getrandom: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> NewMeasurementId() {
  unsigned char bits[16];
  if (absl::Status s = FillRandomBytes(bits, sizeof(bits)); !s.ok()) return s;
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bits), sizeof(bits)));
}

}  // namespace maplex::agent

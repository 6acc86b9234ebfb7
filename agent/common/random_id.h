// Random identifiers from the kernel's cryptographic generator, for ids that must never
// collide across devices, runs and restarts (a measurement id is the server's primary
// key: a collision would make the server drop a real measurement as a replay).
//
//   absl::StatusOr<std::string> id = NewMeasurementId();  // "3f9c...e1", 32 hex digits
#ifndef MAPLEX_AGENT_COMMON_RANDOM_ID_H_
#define MAPLEX_AGENT_COMMON_RANDOM_ID_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace maplex::agent {

// Fills `out` with `size` bytes from getrandom(2), or from /dev/urandom where the kernel
// has no getrandom (ENOSYS). Blocks only until the kernel's pool is first initialized at
// boot. Unavailable when neither source can be read. Thread-safe.
absl::Status FillRandomBytes(void* out, size_t size);

// 128 random bits (FillRandomBytes) as 32 lowercase hex digits. Every draw reads the
// kernel anew, so ids share no seed: one process, a restart or a cloned machine image
// make independent ids.
absl::StatusOr<std::string> NewMeasurementId();

}  // namespace maplex::agent

#endif  // MAPLEX_AGENT_COMMON_RANDOM_ID_H_

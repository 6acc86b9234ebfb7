// The ingest rate of each agent token, as a token bucket: `burst` measurements at once,
// refilled at `per_second`. Only agent tokens are limited: operators (imports, AuthMode
// kNone) are trusted with their own data.
//
//   IngestRateLimiter limiter(100, 10000, [] { return absl::Now(); });
//   if (absl::Status s = limiter.Take(token_id, batch_size); !s.ok()) return s;
#ifndef MAPLEX_SERVER_INGEST_RATE_H_
#define MAPLEX_SERVER_INGEST_RATE_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace maplex::server {

class IngestRateLimiter {
 public:
  IngestRateLimiter(double per_second, int burst, std::function<absl::Time()> now)
      : per_second_(per_second), burst_(burst), now_(std::move(now)) {}

  // Takes `count` measurements from the bucket of `token_id` (a new token's bucket is
  // full). ResourceExhausted, taking nothing, when fewer are left; the message says when
  // the batch would fit.
  absl::Status Take(int64_t token_id, int count);

 private:
  struct Bucket {
    double level = 0;
    absl::Time updated;
  };

  const double per_second_;
  const int burst_;
  const std::function<absl::Time()> now_;
  std::mutex mu_;
  absl::flat_hash_map<int64_t, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_INGEST_RATE_H_

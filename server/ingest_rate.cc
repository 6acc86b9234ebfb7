#include "server/ingest_rate.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace maplex::server {

absl::Status IngestRateLimiter::Take(int64_t token_id, int count) {
  absl::Time now = now_();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = buckets_.try_emplace(token_id);
  Bucket& b = it->second;
  if (inserted) {
    b.level = burst_;
  } else {
    b.level =
        std::min<double>(burst_, b.level + absl::ToDoubleSeconds(now - b.updated) * per_second_);
  }
  b.updated = now;
  if (count > b.level) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "ingest rate of agent token %d exceeded: the limit is %g measurements/s with bursts of "
        "%d; this batch of %d fits in %.1f s (nothing of it was stored)",
        token_id, per_second_, burst_, count, (count - b.level) / per_second_));
  }
  b.level -= count;
  return absl::OkStatus();
}

}  // namespace maplex::server

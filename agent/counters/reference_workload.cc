#include "agent/counters/reference_workload.h"

#include "absl/status/status.h"

namespace maplex::agent {

Nb201Cell ReferenceCell() { return *core::Nb201Space::CellFromOpCodes({3, 3, 3, 3, 3, 3}); }

absl::StatusOr<CounterReport> CountReferenceWorkload(CounterSource& source, Runtime& runtime,
                                                     int runs) {
  if (runs < 1) return absl::InvalidArgumentError("reference workload needs runs >= 1");
  if (absl::Status prepared = runtime.Prepare(ReferenceCell(), /*batch=*/1, /*threads=*/1);
      !prepared.ok()) {
    return prepared;
  }
  if (absl::StatusOr<std::optional<double>> warm = runtime.Run(); !warm.ok()) {
    return warm.status();
  }
  absl::Status failed;
  absl::StatusOr<CounterReport> report = source.CountAround(MapleEdgeCounterNames(), [&] {
    for (int i = 0; i < runs && failed.ok(); ++i) {
      if (absl::StatusOr<std::optional<double>> run = runtime.Run(); !run.ok()) {
        failed = run.status();
      }
    }
  });
  if (!failed.ok()) return failed;
  return report;
}

}  // namespace maplex::agent

// The served form of every latency model: for each device, the prediction for every
// architecture of the space, computed once at training (or load) time so that Predict is
// a table lookup (>= 1 M cells/s on one core). Methods differ only in how the table is
// filled (core/model/baseline.h, core/model/maple_model.h).
//
//   std::vector<DeviceTable> tables = ...;
//   absl::StatusOr<std::unique_ptr<LatencyModel>> m =
//       MakeTabulatedModel(Method::kBaseline, seed, std::move(tables));
#ifndef MAPLEX_CORE_MODEL_TABULATED_MODEL_H_
#define MAPLEX_CORE_MODEL_TABULATED_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/latency_model.h"

namespace maplex::core {

// z of the two-sided nominal 90 % interval under a normal error in log space.
inline constexpr double kZ90 = 1.6448536269514722;

// One device's predictions, in log-milliseconds, indexed by architecture.
struct DeviceTable {
  std::string device;
  std::string hardware;
  DescriptorUse use;
  bool reference = false;
  int sample_count = 0;
  std::string fit;
  std::vector<double> log_latency;     // ln(ms) per architecture index
  std::vector<double> log_half_width;  // half width of the 90 % interval, ln units, >= 0
};

// Point prediction and 90 % interval of one table entry.
LatencyPrediction PredictionFromLog(double log_latency, double log_half_width);

// Builds the served model. InvalidArgument when a table's size differs from the
// NAS-Bench-201 space, holds a non-finite or negative entry, or a device repeats.
absl::StatusOr<std::unique_ptr<LatencyModel>> MakeTabulatedModel(Method method, uint64_t seed,
                                                                 std::vector<DeviceTable> tables);

// Snapshot format written by this library.
inline constexpr uint32_t kModelFormatVersion = 1;

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_TABULATED_MODEL_H_

// The training ("reference") devices of a model as one dense matrix of log latencies,
// architectures x devices, plus what else is known of each device. Every method reads
// this; it is built once per set of reference devices and shared by all targets.
//
//   absl::StatusOr<ReferenceSet> refs = BuildReferenceSet({&a, &b}, Nb201Space::Get().size());
//   double l = refs->log_latency(arch, 0);   // ln(ms) of arch on device a
#ifndef MAPLEX_CORE_MODEL_REFERENCE_SET_H_
#define MAPLEX_CORE_MODEL_REFERENCE_SET_H_

#include <Eigen/Dense>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/model/latency_model.h"

namespace maplex::core {

struct ReferenceSet {
  std::vector<std::string> devices;
  std::vector<std::string> hardware;
  std::vector<HardwareDescriptor> descriptors;
  // ln(ms), one column per device. A reference device may miss up to
  // 1 - reference_min_coverage of the space; those entries are imputed by an affine fit of
  // the device to the mean profile of the others (ours).
  Eigen::MatrixXd log_latency;
  int size() const { return static_cast<int>(devices.size()); }
};

// InvalidArgument when `devices` is empty or a device has no sample.
absl::StatusOr<ReferenceSet> BuildReferenceSet(const std::vector<const DeviceData*>& devices,
                                               int32_t space_size);

// Checks what TrainLatencyModel promises to reject: duplicate device ids, a sample outside
// [0, space_size), a repeated arch within a device, a non-finite or non-positive latency.
absl::Status ValidateDevices(const std::vector<DeviceData>& devices, int32_t space_size);

// A device's samples as parallel arrays of arch index and ln(ms).
struct LogSamples {
  std::vector<int32_t> archs;
  std::vector<double> log_latency;
};
LogSamples ToLogSamples(const DeviceData& device);

// Least-squares fit of log y = alpha + beta * log L_d(a) of `samples` on reference device
// column `device` (the reference baseline's relation). With one sample beta is 1. A falling
// slope is noise in a few samples — latency grows with latency — so it is replaced by the
// fit with beta fixed to 1 (ours; the protocol does not say).
struct AffineFit {
  double alpha = 0;
  double beta = 1;
  double rss = 0;  // residual sum of squares
};
AffineFit FitAffineToDevice(const ReferenceSet& refs, int device, const LogSamples& samples);

// Share of the space a device's samples cover.
double Coverage(const DeviceData& device, int32_t space_size);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_REFERENCE_SET_H_

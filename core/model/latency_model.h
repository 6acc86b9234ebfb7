// The one interface every latency model implements (the reference baseline, MAPLE and
// MAPLE-X alike), and the two entry points the server and the evaluation harness use:
// train from device data, load from a serialized snapshot.
//
//   std::vector<DeviceData> devices = ...;   // reference devices + sparse target devices
//   absl::StatusOr<std::unique_ptr<LatencyModel>> model = TrainLatencyModel(devices, {});
//   std::vector<LatencyPrediction> out(archs.size());
//   absl::Status s = (*model)->Predict("my_board", archs, absl::MakeSpan(out));
//
// A trained model is immutable and safe to read from many threads at once.
#ifndef MAPLEX_CORE_MODEL_LATENCY_MODEL_H_
#define MAPLEX_CORE_MODEL_LATENCY_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/hardware/descriptor.h"
#include "maplex/v1/model.pb.h"

namespace maplex::core {

// One measured latency of one NAS-Bench-201 cell (official index) on one device.
struct LatencySample {
  int32_t arch_index = 0;
  double latency_ms = 0;
};

// Everything known about one device configuration.
struct DeviceData {
  std::string device;    // configuration id, unique (e.g. "1080ti_32")
  std::string hardware;  // physical hardware; the configurations of one piece share it
  HardwareDescriptor descriptor;
  std::vector<LatencySample> samples;  // at most one per arch_index
};

// A predicted latency with its nominal 90 % interval (lower <= latency <= upper).
struct LatencyPrediction {
  double latency_ms = 0;
  double lower_ms = 0;
  double upper_ms = 0;
};

enum class Method {
  kBaseline,              // log-linear transfer from the best-matching reference device
  kMaple,                 // one regressor over architecture ⊕ descriptor, adapted with k samples
  kMapleVirtualExamples,  // MAPLE + virtual examples
  kMapleWeights,          // MAPLE + hardware-similarity sample weights
  kMapleX,                // both
};
const char* MethodName(Method method);  // "baseline", "maple", "maple+ve", "maple+w", "maplex"
// Inverse of MethodName; InvalidArgument naming the unknown name.
absl::StatusOr<Method> ParseMethod(std::string_view name);

struct TrainOptions {
  Method method = Method::kMapleX;
  uint64_t seed = 1;
  // A device whose samples cover at least this share of the architecture space is a
  // reference (training) device; every other device with samples is a target, adapted
  // from its own samples.
  double reference_min_coverage = 0.9;
};

// Which parts of a device's descriptor a model used to describe it.
struct DescriptorUse {
  bool spec = false;
  bool counters = false;
  bool measured_latencies = false;
};

class LatencyModel {
 public:
  virtual ~LatencyModel() = default;

  virtual Method method() const = 0;

  // The device configurations this model answers for, sorted.
  virtual std::vector<std::string> devices() const = 0;

  // What the model used of `device`'s descriptor. NotFound for a device it does not know.
  virtual absl::StatusOr<DescriptorUse> descriptor_use(std::string_view device) const = 0;

  // Writes the prediction for archs[i] on `device` to out[i]; out.size() must equal
  // archs.size(). NotFound for an unknown device; InvalidArgument naming the first arch
  // index outside the space. Writes nothing on failure.
  virtual absl::Status Predict(std::string_view device, absl::Span<const int32_t> archs,
                               absl::Span<LatencyPrediction> out) const = 0;

  // The whole model as a versioned message; LoadLatencyModel(ToProto()) predicts the same.
  virtual maplex::v1::ModelSnapshot ToProto() const = 0;
};

// Trains `options.method` on `devices`. The model answers for every device given: where a
// device measured an arch, that measurement is served. A device without samples is
// predicted from its descriptor alone (MAPLE methods: the similarity-weighted prior) or, by
// the baseline, as the first reference with a wide interval. A MAPLE target may take the cost
// per primitive of a better-measured target on the same hardware as evidence (ModelTrainer::Fit).
// InvalidArgument when no device qualifies as
// a reference device, or on a sample that is not a finite positive latency of a valid arch.
absl::StatusOr<std::unique_ptr<LatencyModel>> TrainLatencyModel(
    const std::vector<DeviceData>& devices, const TrainOptions& options);

// Rebuilds a model from its snapshot. InvalidArgument for an unknown format version or an
// inconsistent snapshot.
absl::StatusOr<std::unique_ptr<LatencyModel>> LoadLatencyModel(
    const maplex::v1::ModelSnapshot& snapshot);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_LATENCY_MODEL_H_

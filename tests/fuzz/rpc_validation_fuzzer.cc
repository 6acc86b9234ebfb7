// Fuzz target: request validation of every RPC that takes a client's data. The first byte
// picks the request type, the rest is its protobuf wire encoding (parsed as gRPC would).
// Whatever the bytes, validation returns a status; what it accepts obeys the contract the
// store and the model rely on.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/arch/nb201_space.h"
#include "maplex/v1/ingest.pb.h"
#include "maplex/v1/predictor.pb.h"
#include "maplex/v1/registry.pb.h"
#include "server/limits.h"
#include "server/validation.h"

namespace {

using namespace maplex;  // NOLINT: v1 messages and server validation, nothing else

template <typename Request>
bool Parse(const uint8_t* data, size_t size, Request* request) {
  return request->ParseFromArray(data, static_cast<int>(size));
}

void CheckIndex(int32_t index) {
  if (index < 0 || index >= core::Nb201Space::Get().size()) std::abort();
}

// An accepted architecture is a value of a registered space that survives its round trip.
void CheckArchitecture(const core::Architecture& a) {
  if (a.space() == nullptr) std::abort();
  absl::StatusOr<core::Architecture> again = a.space()->Parse(a.ToString());
  if (!again.ok() || *again != a) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const server::Limits limits;
  const uint8_t kind = data[0] % 6;
  ++data;
  --size;
  switch (kind) {
    case 0: {
      v1::PredictRequest r;
      if (!Parse(data, size, &r)) return 0;
      auto archs = server::ValidatePredictRequest(r, limits);
      if (!archs.ok()) return 0;
      if ((!r.has_arch_batch() && archs->size() != static_cast<size_t>(r.archs_size())) ||
          archs->size() > static_cast<size_t>(limits.max_archs_per_predict) ||
          archs->space == nullptr) {
        std::abort();
      }
      // One space per request: NB201 as indices, any other as values of that space.
      const bool nb201 = archs->space == &core::Nb201Space::Get();
      if (nb201 != archs->archs.empty() && archs->size() > 0) std::abort();
      for (int32_t a : archs->nb201_indices) CheckIndex(a);
      for (const core::Architecture& a : archs->archs) {
        if (a.space() != archs->space) std::abort();
        CheckArchitecture(a);
      }
      return 0;
    }
    case 1: {
      v1::MeasurementBatch r;
      if (!Parse(data, size, &r)) return 0;
      auto rows = server::ValidateMeasurementBatch(r, limits);
      if (!rows.ok()) return 0;
      if (rows->size() != static_cast<size_t>(r.measurements_size())) std::abort();
      for (const server::StoredMeasurement& m : *rows) {
        CheckArchitecture(m.arch);
        if (m.arch.space() != rows->front().arch.space()) std::abort();
        const double ms = m.stats.median_ms();
        if (!std::isfinite(ms) || ms <= 0 || ms > limits.max_latency_ms) std::abort();
        if (m.id.empty() || m.device_id.empty()) std::abort();
      }
      return 0;
    }
    case 2: {
      v1::RegisterDeviceRequest r;
      if (Parse(data, size, &r)) (void)server::ValidateRegisterDevice(r, limits);
      return 0;
    }
    case 3: {
      v1::UpdateDeviceRequest r;
      if (Parse(data, size, &r)) (void)server::ValidateUpdateDevice(r, limits);
      return 0;
    }
    case 4: {
      v1::ReportDescriptorRequest r;
      if (Parse(data, size, &r)) (void)server::ValidateDescriptor(r, limits);
      return 0;
    }
    default: {
      v1::Architecture r;
      if (!Parse(data, size, &r)) return 0;
      auto arch = server::ResolveArchitecture(r, "arch");
      if (arch.ok()) CheckArchitecture(*arch);
      return 0;
    }
  }
}

// Request validation for every RPC: runs before anything touches the store, and names the
// offending field and value in its message (DESIGN.md, "Bad input").
#ifndef MAPLEX_SERVER_VALIDATION_H_
#define MAPLEX_SERVER_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "maplex/v1/common.pb.h"
#include "maplex/v1/ingest.pb.h"
#include "maplex/v1/predictor.pb.h"
#include "maplex/v1/registry.pb.h"
#include "server/limits.h"
#include "server/store/store.h"

namespace maplex::server {

// The NB201 indices of a compact batch (one byte per edge op code, 6 per architecture), in
// order. InvalidArgument naming `field` and the architecture for an unknown space, a length
// that is not a whole number of architectures or an op code outside 0..4; ResourceExhausted
// beyond limits.max_archs_per_predict.
absl::StatusOr<std::vector<int32_t>> ResolveArchitectureBatch(
    const maplex::v1::ArchitectureBatch& batch, absl::string_view field, const Limits& limits);

// The NB201 index of `arch`. InvalidArgument naming `field` for an unknown space, a
// malformed cell string or an index out of range.
absl::StatusOr<int32_t> ResolveArchitecture(const maplex::v1::Architecture& arch,
                                            absl::string_view field);

// Checks an identifier (device id, measurement id, label key): 1..max_id_length characters
// of [A-Za-z0-9._:/-].
absl::Status ValidateIdentifier(absl::string_view value, absl::string_view field,
                                const Limits& limits);

// The filters of ListDevicesRequest (category, labels); page_size and page_token are the
// service's.
absl::Status ValidateListDevicesFilter(const maplex::v1::ListDevicesRequest& request,
                                       const Limits& limits);

// The sizes of an architecture's strings (space, cell), checked before it is parsed.
absl::Status ValidateArchitectureSize(const maplex::v1::Architecture& arch, absl::string_view field,
                                      const Limits& limits);

absl::Status ValidateRegisterDevice(const maplex::v1::RegisterDeviceRequest& request,
                                    const Limits& limits);
absl::Status ValidateUpdateDevice(const maplex::v1::UpdateDeviceRequest& request,
                                  const Limits& limits);

// Checks a batch field by field (ids unique within it, finite positive plausible latencies,
// known architectures) and turns it into rows to store. Device existence is checked by
// the caller against the store.
absl::StatusOr<std::vector<StoredMeasurement>> ValidateMeasurementBatch(
    const maplex::v1::MeasurementBatch& batch, const Limits& limits);

absl::Status ValidateDescriptor(const maplex::v1::ReportDescriptorRequest& request,
                                const Limits& limits);

// The NB201 indices asked for. RESOURCE_EXHAUSTED above the per-request limit.
absl::StatusOr<std::vector<int32_t>> ValidatePredictRequest(
    const maplex::v1::PredictRequest& request, const Limits& limits);

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_VALIDATION_H_

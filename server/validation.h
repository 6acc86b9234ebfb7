// Request validation for every RPC: runs before anything touches the store, and names the
// offending field and value in its message (DESIGN.md, "Bad input").
#ifndef MAPLEX_SERVER_VALIDATION_H_
#define MAPLEX_SERVER_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/arch/architecture_space.h"
#include "maplex/v1/common.pb.h"
#include "maplex/v1/ingest.pb.h"
#include "maplex/v1/predictor.pb.h"
#include "maplex/v1/registry.pb.h"
#include "server/limits.h"
#include "server/store/store.h"

namespace maplex::server {

// The registered space `name` names ("" = nb201; aliases such as "nasbench201" accepted).
// InvalidArgument naming `field` and the known spaces for any other name.
absl::StatusOr<const core::ArchitectureSpace*> ResolveSpace(absl::string_view name,
                                                            absl::string_view field);

// ResolveSpace after checking the name's size against limits.max_id_length (a request's
// own `space` field: NextTasks, ListMeasurements).
absl::StatusOr<const core::ArchitectureSpace*> ValidateSpace(absl::string_view name,
                                                             absl::string_view field,
                                                             const Limits& limits);

// The architectures of a compact batch of any registered space (one byte per choice,
// space.positions() bytes per architecture, or two choices per byte with bits_per_choice
// = 4), in order. InvalidArgument naming `field` for an unknown space, an unsupported
// bits_per_choice, a length that is not a whole number of architectures, a nonzero padding
// nibble, or a code outside the options of its position (naming the architecture and the
// position); ResourceExhausted beyond limits.max_archs_per_predict.
absl::StatusOr<std::vector<core::Architecture>> ResolveArchitectureBatch(
    const maplex::v1::ArchitectureBatch& batch, absl::string_view field, const Limits& limits);

// A compact batch whose every code was checked against its position's options but not
// decoded: architectures [start, start + m) are space->FromValidatedCodes(Codes(start, m,
// &scratch), ...). A large Predict decodes it a chunk at a time into a small buffer instead
// of building (and faulting in) one 40-byte Architecture per entry. Points into the
// request's bytes: valid while it lives.
struct EncodedArchitectureBatch {
  const core::ArchitectureSpace* space = nullptr;
  const uint8_t* codes = nullptr;  // the request's choices, as bits_per_choice stores them
  int bits_per_choice = 8;         // 8: one byte per choice; 4: two per byte
  size_t per_arch = 0;
  size_t count = 0;
  // The codes of architectures [start, start + m), one byte each, back to back: a view of
  // the request's bytes (8 bits per choice), or unpacked into *scratch (4 bits; the view
  // is then valid until *scratch changes).
  absl::Span<const uint8_t> Codes(size_t start, size_t m, std::vector<uint8_t>* scratch) const;
};

// ResolveArchitectureBatch's checks (same errors) without decoding.
absl::StatusOr<EncodedArchitectureBatch> ValidateArchitectureBatch(
    const maplex::v1::ArchitectureBatch& batch, absl::string_view field, const Limits& limits);

// `arch` as a value of its space: the NB201 forms `cell` and `index`, or `canonical` in any
// registered space. InvalidArgument naming `field` (and the sub-field) for an unknown
// space, a form the space does not have (cell/index outside nb201), a malformed string
// (the parser's message names the position and the token) or an index out of range.
// Sizes are the caller's (ValidateArchitectureSize).
absl::StatusOr<core::Architecture> ResolveArchitecture(const maplex::v1::Architecture& arch,
                                                       absl::string_view field);

// Checks an identifier (device id, measurement id, label key): 1..max_id_length characters
// of [A-Za-z0-9._:/-].
absl::Status ValidateIdentifier(absl::string_view value, absl::string_view field,
                                const Limits& limits);

// The filters of ListDevicesRequest (category, labels); page_size and page_token are the
// service's.
absl::Status ValidateListDevicesFilter(const maplex::v1::ListDevicesRequest& request,
                                       const Limits& limits);

// The sizes of an architecture's strings (space, cell, canonical), checked before it is
// parsed.
absl::Status ValidateArchitectureSize(const maplex::v1::Architecture& arch, absl::string_view field,
                                      const Limits& limits);

absl::Status ValidateRegisterDevice(const maplex::v1::RegisterDeviceRequest& request,
                                    const Limits& limits);
absl::Status ValidateUpdateDevice(const maplex::v1::UpdateDeviceRequest& request,
                                  const Limits& limits);

// Checks a batch field by field (ids unique within it, finite positive plausible latencies,
// known architectures, all of one space: the first measurement of another space is named)
// and turns it into rows to store. Device existence is checked by
// the caller against the store.
absl::StatusOr<std::vector<StoredMeasurement>> ValidateMeasurementBatch(
    const maplex::v1::MeasurementBatch& batch, const Limits& limits);

absl::Status ValidateDescriptor(const maplex::v1::ReportDescriptorRequest& request,
                                const Limits& limits);

// The architectures of one Predict request: all of one space. NB201 requests resolve
// straight to official indices (what the served NB201 model reads), so its hot path builds
// no Architecture values; other spaces resolve to values.
struct PredictArchitectures {
  const core::ArchitectureSpace* space = nullptr;
  std::vector<int32_t> nb201_indices;     // when space is nb201
  std::vector<core::Architecture> archs;  // for every other space
  // Instead of `archs`, with decode_batch = false: the arch_batch of another space, checked.
  EncodedArchitectureBatch encoded;
  size_t size() const { return nb201_indices.size() + archs.size() + encoded.count; }
};

// The architectures asked for, in order. InvalidArgument naming the position for a bad
// architecture or one of another space than the first (one space per request);
// RESOURCE_EXHAUSTED above the per-request limit. With decode_batch false, an arch_batch of
// a space other than NB201 is checked (same errors) and left encoded in `encoded`.
absl::StatusOr<PredictArchitectures> ValidatePredictRequest(
    const maplex::v1::PredictRequest& request, const Limits& limits, bool decode_batch = true);

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_VALIDATION_H_

#include "server/validation.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/arch/nb201_space.h"
#include "core/arch/packed_choices.h"
#include "core/arch/space_registry.h"

namespace maplex::server {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string Quoted(absl::string_view value) {
  constexpr size_t kShown = 80;
  if (value.size() <= kShown) return absl::StrCat("\"", value, "\"");
  return absl::StrCat("\"", value.substr(0, kShown), "...\" (", value.size(), " bytes)");
}

absl::Status ValidateLength(absl::string_view value, absl::string_view field, int max) {
  if (static_cast<int>(value.size()) > max) {
    return Invalid(field, absl::StrCat(value.size(), " bytes, more than the limit of ", max));
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view value, absl::string_view field, const Limits& limits) {
  return ValidateLength(value, field, limits.max_text_length);
}

// A latency must be finite, positive and below an hour.
absl::Status ValidateLatency(double ms, absl::string_view field, const Limits& limits,
                             bool zero_allowed) {
  if (!std::isfinite(ms) || ms < 0 || (ms == 0 && !zero_allowed)) {
    return Invalid(field, absl::StrFormat("%g is not a %s finite latency in ms", ms,
                                          zero_allowed ? "non-negative" : "positive"));
  }
  if (ms > limits.max_latency_ms) {
    return Invalid(field, absl::StrFormat("%g ms is absurd (limit %g ms)", ms, limits.max_latency_ms));
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const maplex::v1::HardwareSpec& spec) {
  const std::pair<const char*, std::pair<bool, double>> fields[] = {
      {"spec.compute_units", {spec.has_compute_units(), spec.compute_units()}},
      {"spec.threads", {spec.has_threads(), spec.threads()}},
      {"spec.base_clock_ghz", {spec.has_base_clock_ghz(), spec.base_clock_ghz()}},
      {"spec.boost_clock_ghz", {spec.has_boost_clock_ghz(), spec.boost_clock_ghz()}},
      {"spec.l2_mib", {spec.has_l2_mib(), spec.l2_mib()}},
      {"spec.llc_mib", {spec.has_llc_mib(), spec.llc_mib()}},
      {"spec.memory_gib", {spec.has_memory_gib(), spec.memory_gib()}},
      {"spec.memory_bandwidth_gbs", {spec.has_memory_bandwidth_gbs(), spec.memory_bandwidth_gbs()}},
      {"spec.tdp_w", {spec.has_tdp_w(), spec.tdp_w()}},
  };
  for (const auto& [name, value] : fields) {
    if (value.first && (!std::isfinite(value.second) || value.second <= 0 || value.second > 1e9)) {
      return Invalid(name, absl::StrFormat("%g is not a positive finite figure", value.second));
    }
  }
  static const absl::flat_hash_set<std::string> kCategories = {
      "", "desktop_gpu", "desktop_cpu", "mobile", "edge_cpu", "asic", "fpga"};
  if (!kCategories.contains(spec.category())) {
    return Invalid("spec.category",
                   absl::StrCat(Quoted(spec.category()),
                                " is not one of desktop_gpu, desktop_cpu, mobile, edge_cpu, "
                                "asic, fpga"));
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const maplex::v1::DeviceConfig& config, const Limits& limits) {
  if (config.runtime().empty()) return Invalid("config.runtime", "is empty");
  if (absl::Status s = ValidateIdentifier(config.runtime(), "config.runtime", limits); !s.ok()) {
    return s;
  }
  static const absl::flat_hash_set<std::string> kPrecisions = {"fp32", "fp16", "bf16", "int8"};
  if (!kPrecisions.contains(config.precision())) {
    return Invalid("config.precision",
                   absl::StrCat(Quoted(config.precision()), " is not one of fp32, fp16, bf16, int8"));
  }
  if (config.batch_size() < 1 || config.batch_size() > limits.max_batch_size) {
    return Invalid("config.batch_size", absl::StrCat(config.batch_size(), " is outside 1..",
                                                     limits.max_batch_size));
  }
  if (config.threads() < 0 || config.threads() > limits.max_threads) {
    return Invalid("config.threads",
                   absl::StrCat(config.threads(), " is outside 0..", limits.max_threads));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateIdentifier(absl::string_view value, absl::string_view field,
                                const Limits& limits) {
  if (value.empty()) return Invalid(field, "is empty");
  if (static_cast<int>(value.size()) > limits.max_id_length) {
    return Invalid(field, absl::StrCat(Quoted(value), " is longer than ", limits.max_id_length,
                                       " characters"));
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '/';
    if (!ok) {
      return Invalid(field, absl::StrCat(Quoted(value),
                                         " has a character outside [A-Za-z0-9._:/-]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<const core::ArchitectureSpace*> ResolveSpace(absl::string_view name,
                                                            absl::string_view field) {
  // The default and the common case first: no registry walk on the hot paths.
  if (name.empty() || name == "nb201") return &core::Nb201Space::Get();
  if (const core::ArchitectureSpace* space =
          core::FindSpace(std::string_view(name.data(), name.size())))
    return space;
  std::string known;
  for (std::string_view n : core::SpaceNames()) {
    absl::StrAppend(&known, known.empty() ? "" : ", ", absl::string_view(n.data(), n.size()));
  }
  return Invalid(field, absl::StrCat(Quoted(name), " is not a known search space (", known, ")"));
}

absl::StatusOr<const core::ArchitectureSpace*> ValidateSpace(absl::string_view name,
                                                             absl::string_view field,
                                                             const Limits& limits) {
  if (absl::Status s = ValidateLength(name, field, limits.max_id_length); !s.ok()) return s;
  return ResolveSpace(name, field);
}

namespace {

bool IsNb201(const core::ArchitectureSpace* space) { return space == &core::Nb201Space::Get(); }

// True when some byte of bytes[0, n) is >= limit (1 <= limit <= 128). Eight bytes at a time:
// a byte below 128 gets its high bit from adding 128 - limit exactly when it is >= limit (no
// carry leaves it); a byte >= 128 has its high bit already (its carry may set the next byte's,
// a false alarm only in a word that is flagged anyway).
bool AnyByteAtLeast(const uint8_t* bytes, size_t n, uint8_t limit) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t add = kOnes * static_cast<uint64_t>(128 - limit);
  size_t i = 0;
  uint64_t flags = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    flags |= (word | (word + add)) & kHigh;
  }
  if (flags != 0) return true;
  for (; i < n; ++i) {
    if (bytes[i] >= limit) return true;
  }
  return false;
}

// How `batch` stores its codes: 8 (one byte per choice, also when bits_per_choice is 0) or
// 4 (two per byte, for a space whose every position has at most 16 options).
absl::StatusOr<int> BatchBits(const maplex::v1::ArchitectureBatch& batch,
                              const core::ArchitectureSpace& space, absl::string_view field) {
  const uint32_t bits = batch.bits_per_choice();
  if (bits == 0 || bits == 8) return 8;
  if (bits != 4) {
    return Invalid(absl::StrCat(field, ".bits_per_choice"),
                   absl::StrCat(bits,
                                " is not supported: 0 or 8 (one byte per choice) or 4 (two "
                                "choices per byte)"));
  }
  for (int p = 0; p < space.positions(); ++p) {
    if (space.options(p) > 16) {
      return Invalid(absl::StrCat(field, ".bits_per_choice"),
                     absl::StrCat("4 bits cannot hold the ", space.options(p),
                                  " options of position ", p, " of ", SpaceName(space)));
    }
  }
  return 4;
}

// The number of architectures in a batch of `space` whose codes take `bits` each (BatchBits),
// or the error naming `field`: a length that is not a whole number of architectures, a
// nonzero padding nibble, more architectures than the limit.
absl::StatusOr<size_t> BatchCount(const maplex::v1::ArchitectureBatch& batch,
                                  const core::ArchitectureSpace& space, int bits,
                                  absl::string_view field, const Limits& limits) {
  const std::string& choices = batch.choices();
  const size_t per_arch = static_cast<size_t>(space.positions());
  if (choices.empty()) return Invalid(absl::StrCat(field, ".choices"), "is empty");
  size_t count = 0;
  if (bits == 8) {
    if (choices.size() % per_arch != 0) {
      return Invalid(absl::StrCat(field, ".choices"),
                     absl::StrCat(choices.size(), " bytes are not a whole number of ", per_arch,
                                  "-byte ", SpaceName(space), " architectures"));
    }
    count = choices.size() / per_arch;
  } else {
    count = 2 * choices.size() / per_arch;
    if (core::PackedChoiceBytes(count * per_arch) != choices.size()) {
      return Invalid(
          absl::StrCat(field, ".choices"),
          absl::StrCat(choices.size(), " bytes are not a whole number of ", per_arch, "-choice ",
                       SpaceName(space), " architectures at 4 bits per choice"));
    }
    // Only a space with an odd number of positions has a padding nibble (none registered
    // today: nb201 6, fbnet 22); kept so that such a space needs no change here.
    const uint8_t last = static_cast<uint8_t>(choices.back());
    if ((count * per_arch) % 2 == 1 && (last >> 4) != 0) {
      return Invalid(absl::StrCat(field, ".choices"),
                     absl::StrCat("the high nibble of the last byte pads an odd number of "
                                  "choices and must be 0, not ",
                                  last >> 4));
    }
  }
  if (count > static_cast<size_t>(limits.max_archs_per_predict)) {
    return absl::ResourceExhaustedError(absl::StrCat(field, ": ", count,
                                                     " architectures, more than the limit of ",
                                                     limits.max_archs_per_predict));
  }
  return count;
}

// The NB201 batch straight to official indices: the Predict hot path of the NB201 model.
absl::StatusOr<std::vector<int32_t>> Nb201BatchIndices(const maplex::v1::ArchitectureBatch& batch,
                                                       absl::string_view field,
                                                       const Limits& limits) {
  const core::Nb201Space& space = core::Nb201Space::Get();
  absl::StatusOr<int> bits = BatchBits(batch, space, field);
  if (!bits.ok()) return bits.status();
  absl::StatusOr<size_t> count = BatchCount(batch, space, *bits, field, limits);
  if (!count.ok()) return count.status();
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(batch.choices().data());
  constexpr size_t kPerArch = core::kNb201EdgeCount;
  std::vector<int32_t> archs(*count);
  for (size_t i = 0; i < *count; ++i) {
    core::Nb201Cell cell;
    for (size_t e = 0; e < kPerArch; ++e) {
      const size_t j = i * kPerArch + e;
      const uint8_t code = *bits == 8 ? bytes[j] : core::ChoiceNibbleAt(bytes, j);
      if (code >= core::kNb201OpCount) {
        return Invalid(absl::StrCat(field, ".choices"),
                       absl::StrCat("architecture ", i, ", edge ", e, ": op code ", code,
                                    " is outside 0..", core::kNb201OpCount - 1));
      }
      cell[e] = static_cast<core::Nb201Op>(code);
    }
    archs[i] = space.IndexOfCell(cell);
  }
  return archs;
}

// The older NB201 forms (cell, index) are NB201's only.
absl::Status Nb201FormOnly(const core::ArchitectureSpace& space, absl::string_view field,
                           absl::string_view form) {
  return Invalid(absl::StrCat(field, ".", form),
                 absl::StrCat("is a form of nb201 architectures only; an architecture of ",
                              SpaceName(space), " is given by canonical"));
}

// The official NB201 index of an NB201 architecture in any of its three forms.
absl::StatusOr<int32_t> ResolveNb201Index(const maplex::v1::Architecture& arch,
                                          absl::string_view field) {
  const core::Nb201Space& space = core::Nb201Space::Get();
  switch (arch.id_case()) {
    case maplex::v1::Architecture::kIndex:
      if (arch.index() < 0 || arch.index() >= core::kNb201CellCount) {
        return Invalid(absl::StrCat(field, ".index"),
                       absl::StrCat(arch.index(), " is outside 0..", core::kNb201CellCount - 1));
      }
      return arch.index();
    case maplex::v1::Architecture::kCell: {
      absl::StatusOr<int32_t> index = space.IndexOf(std::string_view(arch.cell()));
      if (!index.ok()) {
        return Invalid(absl::StrCat(field, ".cell"),
                       absl::StrCat(Quoted(arch.cell()), ": ", index.status().message()));
      }
      return *index;
    }
    case maplex::v1::Architecture::kCanonical: {
      absl::StatusOr<core::Architecture> a = space.Parse(arch.canonical());
      if (!a.ok()) {
        return Invalid(absl::StrCat(field, ".canonical"),
                       absl::StrCat(Quoted(arch.canonical()), ": ", a.status().message()));
      }
      return space.IndexOf(*a);
    }
    case maplex::v1::Architecture::ID_NOT_SET:
      break;
  }
  return Invalid(field, "names no architecture (set canonical, cell or index)");
}

// Mixed spaces in one request or batch: names the first architecture of another space.
absl::Status OtherSpace(absl::string_view field, const core::ArchitectureSpace& space,
                        absl::string_view first_field, const core::ArchitectureSpace& first) {
  return Invalid(
      field, absl::StrCat("space ", SpaceName(space), " differs from ", SpaceName(first), " of ",
                          first_field, "; one request or batch holds one space"));
}

}  // namespace

absl::Span<const uint8_t> EncodedArchitectureBatch::Codes(size_t start, size_t m,
                                                          std::vector<uint8_t>* scratch) const {
  if (bits_per_choice == 8) return absl::MakeConstSpan(codes + start * per_arch, m * per_arch);
  scratch->resize(m * per_arch);
  core::UnpackChoiceNibbles(codes, start * per_arch, m * per_arch, scratch->data());
  return *scratch;
}

absl::StatusOr<EncodedArchitectureBatch> ValidateArchitectureBatch(
    const maplex::v1::ArchitectureBatch& batch, absl::string_view field, const Limits& limits) {
  absl::StatusOr<const core::ArchitectureSpace*> space =
      ResolveSpace(batch.space(), absl::StrCat(field, ".space"));
  if (!space.ok()) return space.status();
  absl::StatusOr<int> bits = BatchBits(batch, **space, field);
  if (!bits.ok()) return bits.status();
  absl::StatusOr<size_t> count = BatchCount(batch, **space, *bits, field, limits);
  if (!count.ok()) return count.status();
  EncodedArchitectureBatch out;
  out.space = *space;
  out.codes = reinterpret_cast<const uint8_t*>(batch.choices().data());
  out.bits_per_choice = *bits;
  out.per_arch = static_cast<size_t>((*space)->positions());
  out.count = *count;
  // The options of each position, read once: a large batch checks every code against them.
  std::array<uint8_t, core::Architecture::kMaxChoices> options{};
  for (size_t p = 0; p < out.per_arch; ++p) {
    options[p] = static_cast<uint8_t>((*space)->options(static_cast<int>(p)));
  }
  // Fast path: no code reaches the smallest option count of any position (FBNet: 9 at every
  // position), checked 8 bytes at a time; only a batch that fails it is checked position by
  // position (the byte-by-byte loop cost as much as predicting the batch). A packed batch's
  // padding nibble is 0 (BatchCount), below every limit.
  const uint8_t fewest =
      std::min<uint8_t>(128, *std::min_element(options.begin(), options.begin() + out.per_arch));
  const size_t bytes = batch.choices().size();
  if (out.bits_per_choice == 8 ? !AnyByteAtLeast(out.codes, bytes, fewest)
                               : !core::AnyChoiceNibbleAtLeast(out.codes, bytes, fewest)) {
    return out;
  }
  for (size_t i = 0; i < out.count; ++i) {
    for (size_t p = 0; p < out.per_arch; ++p) {
      const size_t j = i * out.per_arch + p;
      const uint8_t code =
          out.bits_per_choice == 8 ? out.codes[j] : core::ChoiceNibbleAt(out.codes, j);
      if (code >= options[p]) {
        return Invalid(absl::StrCat(field, ".choices"),
                       absl::StrCat("architecture ", i, ", position ", p, ": code ",
                                    static_cast<int>(code), " is outside 0..", options[p] - 1));
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<core::Architecture>> ResolveArchitectureBatch(
    const maplex::v1::ArchitectureBatch& batch, absl::string_view field, const Limits& limits) {
  absl::StatusOr<EncodedArchitectureBatch> encoded =
      ValidateArchitectureBatch(batch, field, limits);
  if (!encoded.ok()) return encoded.status();
  std::vector<core::Architecture> archs(encoded->count);
  std::vector<uint8_t> scratch;
  encoded->space->FromValidatedCodes(encoded->Codes(0, encoded->count, &scratch),
                                     absl::MakeSpan(archs));
  return archs;
}

absl::StatusOr<core::Architecture> ResolveArchitecture(const maplex::v1::Architecture& arch,
                                                       absl::string_view field) {
  absl::StatusOr<const core::ArchitectureSpace*> space =
      ResolveSpace(arch.space(), absl::StrCat(field, ".space"));
  if (!space.ok()) return space.status();
  if (IsNb201(*space)) {
    absl::StatusOr<int32_t> index = ResolveNb201Index(arch, field);
    if (!index.ok()) return index.status();
    return core::Nb201Space::Get().ArchitectureAt(*index);
  }
  switch (arch.id_case()) {
    case maplex::v1::Architecture::kIndex:
      return Nb201FormOnly(**space, field, "index");
    case maplex::v1::Architecture::kCell:
      return Nb201FormOnly(**space, field, "cell");
    case maplex::v1::Architecture::kCanonical: {
      absl::StatusOr<core::Architecture> a = (*space)->Parse(arch.canonical());
      if (!a.ok()) {
        return Invalid(absl::StrCat(field, ".canonical"),
                       absl::StrCat(Quoted(arch.canonical()), ": ", a.status().message()));
      }
      return *a;
    }
    case maplex::v1::Architecture::ID_NOT_SET:
      break;
  }
  return Invalid(field, "names no architecture (set canonical)");
}

absl::Status ValidateArchitectureSize(const maplex::v1::Architecture& arch, absl::string_view field,
                                      const Limits& limits) {
  if (absl::Status s =
          ValidateLength(arch.space(), absl::StrCat(field, ".space"), limits.max_id_length);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateLength(arch.cell(), absl::StrCat(field, ".cell"), limits.max_arch_string_length);
      !s.ok()) {
    return s;
  }
  return ValidateLength(arch.canonical(), absl::StrCat(field, ".canonical"),
                        limits.max_arch_string_length);
}

absl::Status ValidateListDevicesFilter(const maplex::v1::ListDevicesRequest& request,
                                       const Limits& limits) {
  if (absl::Status s = ValidateLength(request.category(), "category", limits.max_id_length);
      !s.ok()) {
    return s;
  }
  if (request.labels_size() > limits.max_labels_per_device) {
    return absl::ResourceExhaustedError(absl::StrCat("labels: ", request.labels_size(),
                                                     " labels, more than the limit of ",
                                                     limits.max_labels_per_device));
  }
  for (const auto& [key, value] : request.labels()) {
    if (absl::Status s = ValidateIdentifier(key, "labels key", limits); !s.ok()) return s;
    if (absl::Status s = ValidateText(value, absl::StrCat("labels[", key, "]"), limits); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRegisterDevice(const maplex::v1::RegisterDeviceRequest& request,
                                    const Limits& limits) {
  if (!request.id().empty()) {
    if (absl::Status s = ValidateIdentifier(request.id(), "id", limits); !s.ok()) return s;
  }
  if (absl::Status s =
          ValidateIdentifier(request.hardware_fingerprint(), "hardware_fingerprint", limits);
      !s.ok()) {
    return s;
  }
  if (request.hardware_name().empty()) return Invalid("hardware_name", "is empty");
  if (absl::Status s = ValidateText(request.hardware_name(), "hardware_name", limits); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateConfig(request.config(), limits); !s.ok()) return s;
  if (absl::Status s = ValidateSpec(request.spec()); !s.ok()) return s;
  if (absl::Status s = ValidateLength(request.spec().isa(), "spec.isa", limits.max_id_length);
      !s.ok()) {
    return s;
  }
  if (request.labels_size() > limits.max_labels_per_device) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "labels: ", request.labels_size(), " labels, more than the limit of ",
        limits.max_labels_per_device));
  }
  for (const auto& [key, value] : request.labels()) {
    if (absl::Status s = ValidateIdentifier(key, "labels key", limits); !s.ok()) return s;
    if (absl::Status s = ValidateText(value, absl::StrCat("labels[", key, "]"), limits); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateUpdateDevice(const maplex::v1::UpdateDeviceRequest& request,
                                  const Limits& limits) {
  if (absl::Status s = ValidateIdentifier(request.id(), "id", limits); !s.ok()) return s;
  if (request.set_labels_size() + request.remove_labels_size() > limits.max_labels_per_device) {
    return absl::ResourceExhaustedError(
        absl::StrCat("set_labels/remove_labels: ", request.set_labels_size(), " + ",
                     request.remove_labels_size(), " labels, more than the limit of ",
                     limits.max_labels_per_device));
  }
  for (const auto& [key, value] : request.set_labels()) {
    if (absl::Status s = ValidateIdentifier(key, "set_labels key", limits); !s.ok()) return s;
    if (absl::Status s = ValidateText(value, absl::StrCat("set_labels[", key, "]"), limits);
        !s.ok()) {
      return s;
    }
  }
  for (const std::string& key : request.remove_labels()) {
    if (absl::Status s = ValidateIdentifier(key, "remove_labels", limits); !s.ok()) return s;
  }
  return absl::OkStatus();
}

namespace {

// Runs `check` (a function of the field's name) with an empty name, and once more with
// measurements[i]<suffix> only when it fails: a batch of 5,000 valid measurements then
// builds none of the 45,000 field names its errors could need. The checks are pure, so
// the second run fails as the first did, now naming the field.
template <typename Check>
absl::Status CheckField(int i, absl::string_view suffix, const Check& check) {
  absl::Status s = check(absl::string_view());
  if (s.ok()) return s;
  return check(absl::StrCat("measurements[", i, "]", suffix));
}

}  // namespace

absl::StatusOr<std::vector<StoredMeasurement>> ValidateMeasurementBatch(
    const maplex::v1::MeasurementBatch& batch, const Limits& limits) {
  if (batch.measurements_size() == 0) return Invalid("measurements", "the batch is empty");
  if (batch.measurements_size() > limits.max_measurements_per_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat("measurements: ", batch.measurements_size(),
                     " in one batch, more than the limit of ", limits.max_measurements_per_batch));
  }
  if (batch.has_spool_depth() && batch.spool_depth() < 0) {
    return Invalid("spool_depth", absl::StrCat(batch.spool_depth(), " is negative"));
  }
  std::vector<StoredMeasurement> rows;
  rows.reserve(batch.measurements_size());
  absl::flat_hash_set<absl::string_view> ids;
  ids.reserve(batch.measurements_size());
  for (int i = 0; i < batch.measurements_size(); ++i) {
    const maplex::v1::Measurement& m = batch.measurements(i);
    if (absl::Status s = CheckField(
            i, ".id",
            [&](absl::string_view field) { return ValidateIdentifier(m.id(), field, limits); });
        !s.ok()) {
      return s;
    }
    if (!ids.insert(m.id()).second) {
      return Invalid(absl::StrCat("measurements[", i, "].id"),
                     absl::StrCat(Quoted(m.id()), " appears twice in the batch"));
    }
    if (absl::Status s = CheckField(i, ".device_id",
                                    [&](absl::string_view field) {
                                      return ValidateIdentifier(m.device_id(), field, limits);
                                    });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckField(i, ".arch",
                                    [&](absl::string_view field) {
                                      return ValidateArchitectureSize(m.arch(), field, limits);
                                    });
        !s.ok()) {
      return s;
    }
    absl::StatusOr<core::Architecture> arch = ResolveArchitecture(m.arch(), absl::string_view());
    if (!arch.ok()) {
      return ResolveArchitecture(m.arch(), absl::StrCat("measurements[", i, "].arch")).status();
    }
    if (!rows.empty() && arch->space() != rows.front().arch.space()) {
      return OtherSpace(absl::StrCat("measurements[", i, "].arch.space"), *arch->space(),
                        "measurements[0]", *rows.front().arch.space());
    }
    const maplex::v1::MeasurementStats& st = m.stats();
    if (absl::Status s = CheckField(i, ".stats.median_ms",
                                    [&](absl::string_view field) {
                                      return ValidateLatency(st.median_ms(), field, limits,
                                                             /*zero_allowed=*/false);
                                    });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckField(i, ".stats.p90_ms",
                                    [&](absl::string_view field) {
                                      return ValidateLatency(st.p90_ms(), field, limits,
                                                             /*zero_allowed=*/true);
                                    });
        !s.ok()) {
      return s;
    }
    if (!std::isfinite(st.stddev_ms()) || st.stddev_ms() < 0) {
      return Invalid(absl::StrCat("measurements[", i, "].stats.stddev_ms"),
                     absl::StrFormat("%g is not a non-negative finite figure", st.stddev_ms()));
    }
    if (st.repeats() < 0) {
      return Invalid(absl::StrCat("measurements[", i, "].stats.repeats"),
                     absl::StrCat(st.repeats(), " is negative"));
    }
    if (absl::Status s = CheckField(i, ".protocol.notes",
                                    [&](absl::string_view field) {
                                      return ValidateText(m.protocol().notes(), field, limits);
                                    });
        !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckField(i, ".protocol.tool",
                                    [&](absl::string_view field) {
                                      return ValidateText(m.protocol().tool(), field, limits);
                                    });
        !s.ok()) {
      return s;
    }
    StoredMeasurement& row = rows.emplace_back();
    row.id = m.id();
    row.device_id = m.device_id();
    row.arch = *arch;
    row.stats = st;
    row.protocol = m.protocol();
    row.measured_at_unix_ms = m.measured_at_unix_ms();
  }
  return rows;
}

absl::Status ValidateDescriptor(const maplex::v1::ReportDescriptorRequest& request,
                                const Limits& limits) {
  if (absl::Status s = ValidateIdentifier(request.device_id(), "device_id", limits); !s.ok()) {
    return s;
  }
  if (request.counters_size() > limits.max_counters_per_descriptor) {
    return absl::ResourceExhaustedError(absl::StrCat("counters: ", request.counters_size(),
                                                     " counters, more than the limit of ",
                                                     limits.max_counters_per_descriptor));
  }
  absl::flat_hash_set<absl::string_view> names;
  for (int i = 0; i < request.counters_size(); ++i) {
    const maplex::v1::CounterValue& c = request.counters(i);
    const std::string at = absl::StrCat("counters[", i, "]");
    if (absl::Status s = ValidateIdentifier(c.name(), absl::StrCat(at, ".name"), limits); !s.ok()) {
      return s;
    }
    if (!names.insert(c.name()).second) {
      return Invalid(absl::StrCat(at, ".name"), absl::StrCat(Quoted(c.name()), " appears twice"));
    }
    if (c.available() && (!std::isfinite(c.value()) || c.value() < 0)) {
      return Invalid(absl::StrCat(at, ".value"),
                     absl::StrFormat("%g is not a non-negative finite count", c.value()));
    }
    if (absl::Status s =
            ValidateText(c.unavailable_reason(), absl::StrCat(at, ".unavailable_reason"), limits);
        !s.ok()) {
      return s;
    }
    if (!c.available() && c.value() != 0) {
      return Invalid(absl::StrCat(at, ".value"),
                     "an unavailable counter carries no value (it must be 0)");
    }
  }
  if (!std::isfinite(request.reference_workload_seconds()) ||
      request.reference_workload_seconds() < 0) {
    return Invalid("reference_workload_seconds",
                   absl::StrFormat("%g is not a non-negative finite duration",
                                   request.reference_workload_seconds()));
  }
  if (request.microbenchmarks_size() > limits.max_microbenchmarks_per_descriptor) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "microbenchmarks: ", request.microbenchmarks_size(), " entries, more than the limit of ",
        limits.max_microbenchmarks_per_descriptor));
  }
  for (const auto& [name, value] : request.microbenchmarks()) {
    if (absl::Status s = ValidateIdentifier(name, "microbenchmarks key", limits); !s.ok()) return s;
    if (!std::isfinite(value)) {
      return Invalid(absl::StrCat("microbenchmarks[", name, "]"), "is not finite");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PredictArchitectures> ValidatePredictRequest(
    const maplex::v1::PredictRequest& request, const Limits& limits, bool decode_batch) {
  if (absl::Status s = ValidateIdentifier(request.device_id(), "device_id", limits); !s.ok()) {
    return s;
  }
  if (request.interval_factors() && !request.columnar()) {
    return Invalid("interval_factors", "is set without columnar; the factors replace columns");
  }
  PredictArchitectures out;
  if (request.has_arch_batch()) {
    if (request.archs_size() != 0) {
      return Invalid("arch_batch", "is set together with archs; send one or the other");
    }
    if (absl::Status s =
            ValidateLength(request.arch_batch().space(), "arch_batch.space", limits.max_id_length);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<const core::ArchitectureSpace*> space =
        ResolveSpace(request.arch_batch().space(), "arch_batch.space");
    if (!space.ok()) return space.status();
    out.space = *space;
    if (IsNb201(*space)) {
      absl::StatusOr<std::vector<int32_t>> indices =
          Nb201BatchIndices(request.arch_batch(), "arch_batch", limits);
      if (!indices.ok()) return indices.status();
      out.nb201_indices = *std::move(indices);
    } else if (!decode_batch) {
      absl::StatusOr<EncodedArchitectureBatch> encoded =
          ValidateArchitectureBatch(request.arch_batch(), "arch_batch", limits);
      if (!encoded.ok()) return encoded.status();
      out.encoded = *encoded;
    } else {
      absl::StatusOr<std::vector<core::Architecture>> archs =
          ResolveArchitectureBatch(request.arch_batch(), "arch_batch", limits);
      if (!archs.ok()) return archs.status();
      out.archs = *std::move(archs);
    }
    return out;
  }
  if (request.archs_size() == 0) return Invalid("archs", "is empty");
  if (request.archs_size() > limits.max_archs_per_predict) {
    return absl::ResourceExhaustedError(absl::StrCat("archs: ", request.archs_size(),
                                                     " architectures, more than the limit of ",
                                                     limits.max_archs_per_predict));
  }
  for (int i = 0; i < request.archs_size(); ++i) {
    // The field's name is spelled out only for the error: building it for every architecture
    // of a large batch cost more than resolving the architecture itself.
    const v1::Architecture& arch = request.archs(i);
    if (static_cast<int>(arch.space().size()) > limits.max_id_length ||
        static_cast<int>(arch.cell().size()) > limits.max_arch_string_length ||
        static_cast<int>(arch.canonical().size()) > limits.max_arch_string_length) {
      return ValidateArchitectureSize(arch, absl::StrCat("archs[", i, "]"), limits);
    }
    absl::StatusOr<const core::ArchitectureSpace*> space = ResolveSpace(arch.space(), "");
    if (!space.ok())
      return ResolveSpace(arch.space(), absl::StrCat("archs[", i, "].space")).status();
    if (i == 0) {
      out.space = *space;
      if (IsNb201(out.space)) {
        out.nb201_indices.reserve(request.archs_size());
      } else {
        out.archs.reserve(request.archs_size());
      }
    } else if (*space != out.space) {
      return OtherSpace(absl::StrCat("archs[", i, "].space"), **space, "archs[0]", *out.space);
    }
    if (IsNb201(out.space)) {
      absl::StatusOr<int32_t> a = ResolveNb201Index(arch, "archs[]");
      if (!a.ok()) return ResolveNb201Index(arch, absl::StrCat("archs[", i, "]")).status();
      out.nb201_indices.push_back(*a);
    } else {
      absl::StatusOr<core::Architecture> a = ResolveArchitecture(arch, "archs[]");
      if (!a.ok()) return ResolveArchitecture(arch, absl::StrCat("archs[", i, "]")).status();
      out.archs.push_back(*a);
    }
  }
  return out;
}

}  // namespace maplex::server

#include "server/validation.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/arch/nb201_space.h"

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

absl::StatusOr<std::vector<int32_t>> ResolveArchitectureBatch(
    const maplex::v1::ArchitectureBatch& batch, absl::string_view field, const Limits& limits) {
  if (!batch.space().empty() && batch.space() != "nb201") {
    return Invalid(absl::StrCat(field, ".space"),
                   absl::StrCat(Quoted(batch.space()), " is not a known search space (nb201)"));
  }
  const std::string& choices = batch.choices();
  constexpr size_t kPerArch = core::kNb201EdgeCount;
  if (choices.empty()) return Invalid(absl::StrCat(field, ".choices"), "is empty");
  if (choices.size() % kPerArch != 0) {
    return Invalid(absl::StrCat(field, ".choices"),
                   absl::StrCat(choices.size(), " bytes are not a whole number of ", kPerArch,
                                "-byte nb201 architectures"));
  }
  const size_t count = choices.size() / kPerArch;
  if (count > static_cast<size_t>(limits.max_archs_per_predict)) {
    return absl::ResourceExhaustedError(absl::StrCat(field, ": ", count,
                                                     " architectures, more than the limit of ",
                                                     limits.max_archs_per_predict));
  }
  const core::Nb201Space& space = core::Nb201Space::Get();
  std::vector<int32_t> archs(count);
  for (size_t i = 0; i < count; ++i) {
    core::Nb201Cell cell;
    for (size_t e = 0; e < kPerArch; ++e) {
      const uint8_t code = static_cast<uint8_t>(choices[i * kPerArch + e]);
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

absl::StatusOr<int32_t> ResolveArchitecture(const maplex::v1::Architecture& arch,
                                            absl::string_view field) {
  if (!arch.space().empty() && arch.space() != "nb201") {
    return Invalid(absl::StrCat(field, ".space"),
                   absl::StrCat(Quoted(arch.space()), " is not a known search space (nb201)"));
  }
  switch (arch.id_case()) {
    case maplex::v1::Architecture::kIndex:
      if (arch.index() < 0 || arch.index() >= core::kNb201CellCount) {
        return Invalid(absl::StrCat(field, ".index"),
                       absl::StrCat(arch.index(), " is outside 0..", core::kNb201CellCount - 1));
      }
      return arch.index();
    case maplex::v1::Architecture::kCell: {
      absl::StatusOr<int32_t> index =
          core::Nb201Space::Get().IndexOf(std::string_view(arch.cell()));
      if (!index.ok()) {
        return Invalid(absl::StrCat(field, ".cell"),
                       absl::StrCat(Quoted(arch.cell()), ": ", index.status().message()));
      }
      return *index;
    }
    case maplex::v1::Architecture::ID_NOT_SET:
      break;
  }
  return Invalid(field, "names no architecture (set cell or index)");
}

absl::Status ValidateArchitectureSize(const maplex::v1::Architecture& arch, absl::string_view field,
                                      const Limits& limits) {
  if (absl::Status s =
          ValidateLength(arch.space(), absl::StrCat(field, ".space"), limits.max_id_length);
      !s.ok()) {
    return s;
  }
  return ValidateLength(arch.cell(), absl::StrCat(field, ".cell"), limits.max_arch_string_length);
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
  for (int i = 0; i < batch.measurements_size(); ++i) {
    const maplex::v1::Measurement& m = batch.measurements(i);
    const std::string at = absl::StrCat("measurements[", i, "]");
    if (absl::Status s = ValidateIdentifier(m.id(), absl::StrCat(at, ".id"), limits); !s.ok()) {
      return s;
    }
    if (!ids.insert(m.id()).second) {
      return Invalid(absl::StrCat(at, ".id"), absl::StrCat(Quoted(m.id()),
                                                          " appears twice in the batch"));
    }
    if (absl::Status s = ValidateIdentifier(m.device_id(), absl::StrCat(at, ".device_id"), limits);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ValidateArchitectureSize(m.arch(), absl::StrCat(at, ".arch"), limits);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<int32_t> arch = ResolveArchitecture(m.arch(), absl::StrCat(at, ".arch"));
    if (!arch.ok()) return arch.status();
    const maplex::v1::MeasurementStats& st = m.stats();
    if (absl::Status s = ValidateLatency(st.median_ms(), absl::StrCat(at, ".stats.median_ms"),
                                         limits, /*zero_allowed=*/false);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ValidateLatency(st.p90_ms(), absl::StrCat(at, ".stats.p90_ms"), limits,
                                         /*zero_allowed=*/true);
        !s.ok()) {
      return s;
    }
    if (!std::isfinite(st.stddev_ms()) || st.stddev_ms() < 0) {
      return Invalid(absl::StrCat(at, ".stats.stddev_ms"),
                     absl::StrFormat("%g is not a non-negative finite figure", st.stddev_ms()));
    }
    if (st.repeats() < 0) {
      return Invalid(absl::StrCat(at, ".stats.repeats"), absl::StrCat(st.repeats(), " is negative"));
    }
    if (absl::Status s = ValidateText(m.protocol().notes(), absl::StrCat(at, ".protocol.notes"),
                                      limits);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ValidateText(m.protocol().tool(), absl::StrCat(at, ".protocol.tool"),
                                      limits);
        !s.ok()) {
      return s;
    }
    StoredMeasurement& row = rows.emplace_back();
    row.id = m.id();
    row.device_id = m.device_id();
    row.arch_index = *arch;
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

absl::StatusOr<std::vector<int32_t>> ValidatePredictRequest(
    const maplex::v1::PredictRequest& request, const Limits& limits) {
  if (absl::Status s = ValidateIdentifier(request.device_id(), "device_id", limits); !s.ok()) {
    return s;
  }
  if (request.has_arch_batch()) {
    if (request.archs_size() != 0) {
      return Invalid("arch_batch", "is set together with archs; send one or the other");
    }
    return ResolveArchitectureBatch(request.arch_batch(), "arch_batch", limits);
  }
  if (request.archs_size() == 0) return Invalid("archs", "is empty");
  if (request.archs_size() > limits.max_archs_per_predict) {
    return absl::ResourceExhaustedError(absl::StrCat("archs: ", request.archs_size(),
                                                     " architectures, more than the limit of ",
                                                     limits.max_archs_per_predict));
  }
  std::vector<int32_t> archs;
  archs.reserve(request.archs_size());
  for (int i = 0; i < request.archs_size(); ++i) {
    // The field's name is spelled out only for the error: building it for every architecture
    // of a large batch cost more than resolving the architecture itself.
    const v1::Architecture& arch = request.archs(i);
    if (static_cast<int>(arch.space().size()) > limits.max_id_length ||
        static_cast<int>(arch.cell().size()) > limits.max_arch_string_length) {
      return ValidateArchitectureSize(arch, absl::StrCat("archs[", i, "]"), limits);
    }
    absl::StatusOr<int32_t> a = ResolveArchitecture(arch, "archs[]");
    if (!a.ok()) {
      return ResolveArchitecture(arch, absl::StrCat("archs[", i, "]")).status();
    }
    archs.push_back(*a);
  }
  return archs;
}

}  // namespace maplex::server

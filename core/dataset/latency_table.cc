#include "core/dataset/latency_table.h"

#include <cmath>
#include <map>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/arch/space_registry.h"

namespace maplex::core {
namespace {

// Lines of `text` without the trailing '\r' of CRLF files; blank lines dropped.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

// This Abseil build's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status FieldError(int line, std::string_view column, std::string_view value,
                        std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ", column ", Absl(column), ": ",
                                                 Absl(what), " \"", Absl(value), "\""));
}

absl::StatusOr<std::optional<double>> OptionalNumber(int line, std::string_view column,
                                                     std::string_view value) {
  if (value.empty()) return std::optional<double>();
  double v;
  if (!absl::SimpleAtod(Absl(value), &v) || !std::isfinite(v)) {
    return FieldError(line, column, value, "not a number");
  }
  return std::optional<double>(v);
}

}  // namespace

std::vector<std::string> SplitCsvLine(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

absl::StatusOr<std::vector<DeviceRow>> ParseDevicesCsv(std::string_view devices_csv) {
  const std::vector<std::string_view> lines = Lines(devices_csv);
  if (lines.empty()) return absl::InvalidArgumentError("devices CSV is empty");
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  std::map<std::string, size_t> column;
  for (size_t c = 0; c < header.size(); ++c) column[header[c]] = c;
  if (!column.count("device"))
    return absl::InvalidArgumentError("devices CSV has no device column");

  std::vector<DeviceRow> rows;
  for (size_t l = 1; l < lines.size(); ++l) {
    const int line_no = static_cast<int>(l) + 1;
    const std::vector<std::string> fields = SplitCsvLine(lines[l]);
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat("devices CSV line ", line_no, ": ",
                                                     fields.size(), " fields, header has ",
                                                     header.size()));
    }
    auto text = [&](const char* name) -> std::string {
      auto it = column.find(name);
      return it == column.end() ? std::string() : fields[it->second];
    };
    DeviceRow row;
    row.device = text("device");
    row.hardware = text("hardware").empty() ? row.device : text("hardware");
    HardwareSpec& spec = row.descriptor.spec;
    spec.category = ParseDeviceCategory(text("category"));
    spec.isa = text("isa");
    if (!text("precision").empty()) spec.precision = text("precision");
    const std::string batch = text("batch_size");
    if (!batch.empty() && (!absl::SimpleAtoi(batch, &spec.batch_size) || spec.batch_size < 1)) {
      return FieldError(line_no, "batch_size", batch, "not a positive integer");
    }
    struct NumericSpec {
      const char* name;
      std::optional<double>* field;
    };
    const NumericSpec numeric[] = {
        {"compute_units", &spec.compute_units},
        {"threads", &spec.threads},
        {"base_clock_ghz", &spec.base_clock_ghz},
        {"boost_clock_ghz", &spec.boost_clock_ghz},
        {"l2_mib", &spec.l2_mib},
        {"llc_mib", &spec.llc_mib},
        {"memory_gib", &spec.memory_gib},
        {"memory_bandwidth_gbs", &spec.memory_bandwidth_gbs},
        {"tdp_w", &spec.tdp_w},
    };
    for (const NumericSpec& n : numeric) {
      absl::StatusOr<std::optional<double>> v = OptionalNumber(line_no, n.name, text(n.name));
      if (!v.ok()) return v.status();
      *n.field = *v;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<std::vector<DeviceData>> ParseLatencyTable(std::string_view latency_csv,
                                                          std::string_view devices_csv,
                                                          const Nb201Space& space) {
  absl::StatusOr<std::vector<DeviceRow>> rows = ParseDevicesCsv(devices_csv);
  if (!rows.ok()) return rows.status();
  std::map<std::string, const DeviceRow*> row_of;
  for (const DeviceRow& row : *rows) row_of[row.device] = &row;

  const std::vector<std::string_view> lines = Lines(latency_csv);
  if (lines.empty()) return absl::InvalidArgumentError("latency CSV is empty");
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  if (header.size() < 3 || header[0] != "arch_index" || header[1] != "arch_str") {
    return absl::InvalidArgumentError(
        "latency CSV header must start with arch_index,arch_str and name one device or more");
  }
  std::vector<DeviceData> devices(header.size() - 2);
  std::map<std::string, int> seen;
  for (size_t c = 2; c < header.size(); ++c) {
    DeviceData& d = devices[c - 2];
    d.device = header[c];
    if (seen[d.device]++) {
      return absl::InvalidArgumentError(
          absl::StrCat("latency CSV: device ", d.device, " appears twice in the header"));
    }
    auto it = row_of.find(d.device);
    d.hardware = it == row_of.end() ? d.device : it->second->hardware;
    if (it != row_of.end()) d.descriptor = it->second->descriptor;
  }

  for (size_t l = 1; l < lines.size(); ++l) {
    const int line_no = static_cast<int>(l) + 1;
    const std::vector<std::string> fields = SplitCsvLine(lines[l]);
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat("latency CSV line ", line_no, ": ",
                                                     fields.size(), " fields, header has ",
                                                     header.size()));
    }
    int32_t index;
    if (!absl::SimpleAtoi(fields[0], &index) || index < 0 || index >= space.size()) {
      return FieldError(line_no, "arch_index", fields[0], "not an index of the space");
    }
    absl::StatusOr<int32_t> from_string = space.IndexOf(fields[1]);
    if (!from_string.ok()) return FieldError(line_no, "arch_str", fields[1], "malformed cell");
    if (*from_string != index) {
      return FieldError(line_no, "arch_str", fields[1],
                        absl::StrCat("is index ", *from_string, ", not ", index, ":"));
    }
    for (size_t c = 2; c < fields.size(); ++c) {
      if (fields[c].empty()) continue;
      double ms;
      if (!absl::SimpleAtod(fields[c], &ms) || !std::isfinite(ms) || ms <= 0) {
        return FieldError(line_no, header[c], fields[c], "not a finite positive latency");
      }
      devices[c - 2].samples.push_back({index, ms});
    }
  }
  return devices;
}

absl::StatusOr<SpaceLatencyTable> ParseSpaceLatencyTable(std::string_view latency_csv,
                                                         std::string_view devices_csv,
                                                         const ArchitectureSpace* space) {
  absl::StatusOr<std::vector<DeviceRow>> rows = ParseDevicesCsv(devices_csv);
  if (!rows.ok()) return rows.status();
  std::map<std::string, const DeviceRow*> row_of;
  for (const DeviceRow& row : *rows) row_of[row.device] = &row;

  const std::vector<std::string_view> lines = Lines(latency_csv);
  if (lines.empty()) return absl::InvalidArgumentError("latency CSV is empty");
  const std::vector<std::string> header = SplitCsvLine(lines[0]);
  size_t first_device;  // column of the first device
  size_t arch_column;
  if (header.size() >= 2 && header[0] == "arch") {  // a lone "arch" names no device
    first_device = 1;
    arch_column = 0;
  } else if (header.size() >= 3 && header[0] == "arch_index" && header[1] == "arch_str") {
    first_device = 2;
    arch_column = 1;
    if (space == nullptr) space = &Nb201Space::Get();
    if (space != &Nb201Space::Get()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "latency CSV: an arch_index,arch_str table is NB201's, not ", Absl(space->name()), "'s"));
    }
  } else {
    return absl::InvalidArgumentError(
        "latency CSV header must start with arch (or arch_index,arch_str) and name one device "
        "or more");
  }
  if (space == nullptr) {
    if (lines.size() < 2) return absl::InvalidArgumentError("latency CSV has no rows");
    const std::vector<std::string> first = SplitCsvLine(lines[1]);
    for (std::string_view name : SpaceNames()) {
      const ArchitectureSpace* candidate = FindSpace(name);
      if (!first.empty() && candidate->Parse(first[0]).ok()) {
        space = candidate;
        break;
      }
    }
    if (space == nullptr) {
      return FieldError(2, "arch", first.empty() ? "" : first[0],
                        "is an architecture of no registered space:");
    }
  }

  SpaceLatencyTable table;
  table.space = space;
  std::map<std::string, int> seen;
  for (size_t c = first_device; c < header.size(); ++c) {
    SpaceLatencyTable::Column column;
    column.device = header[c];
    if (seen[column.device]++) {
      return absl::InvalidArgumentError(
          absl::StrCat("latency CSV: device ", column.device, " appears twice in the header"));
    }
    auto it = row_of.find(column.device);
    column.hardware = it == row_of.end() ? column.device : it->second->hardware;
    if (it != row_of.end()) column.descriptor = it->second->descriptor;
    table.devices.push_back(std::move(column));
  }

  absl::flat_hash_set<Architecture> archs_seen;
  for (size_t l = 1; l < lines.size(); ++l) {
    const int line_no = static_cast<int>(l) + 1;
    const std::vector<std::string> fields = SplitCsvLine(lines[l]);
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat("latency CSV line ", line_no, ": ",
                                                     fields.size(), " fields, header has ",
                                                     header.size()));
    }
    absl::StatusOr<Architecture> arch = space->Parse(fields[arch_column]);
    if (!arch.ok()) {
      return FieldError(line_no, header[arch_column], fields[arch_column],
                        absl::StrCat(arch.status().message(), ":"));
    }
    if (arch_column == 1) {
      int32_t index;
      if (!absl::SimpleAtoi(Absl(fields[0]), &index) || index != Nb201Space::Get().IndexOf(*arch)) {
        return FieldError(line_no, "arch_index", fields[0],
                          absl::StrCat("is not the index of ", fields[1], ":"));
      }
    }
    if (!archs_seen.insert(*arch).second) {
      return FieldError(line_no, header[arch_column], fields[arch_column], "repeats the row of");
    }
    table.archs.push_back(*arch);
    for (size_t c = first_device; c < fields.size(); ++c) {
      std::vector<double>& column = table.devices[c - first_device].latency_ms;
      if (fields[c].empty()) {
        column.push_back(std::nan(""));
        continue;
      }
      double ms;
      if (!absl::SimpleAtod(Absl(fields[c]), &ms) || !std::isfinite(ms) || ms <= 0) {
        return FieldError(line_no, header[c], fields[c], "not a finite positive latency");
      }
      column.push_back(ms);
    }
  }
  return table;
}

}  // namespace maplex::core

// Parses the bundled latency data (data/README.md) from text into DeviceData: the wide
// latency CSV (`arch_index,arch_str,<device>...`, milliseconds) and the devices CSV (one
// row per device column: hardware grouping, category, specs); and any space's table
// (`arch,<device>...`, e.g. FBNet's) into a SpaceLatencyTable keyed by architecture value. No I/O:
// the caller reads (and gunzips) the files.
//
//   absl::StatusOr<std::vector<DeviceData>> devices =
//       ParseLatencyTable(latency_csv, devices_csv, Nb201Space::Get());
#ifndef MAPLEX_CORE_DATASET_LATENCY_TABLE_H_
#define MAPLEX_CORE_DATASET_LATENCY_TABLE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/arch/architecture_space.h"
#include "core/arch/nb201_space.h"
#include "core/model/latency_model.h"

namespace maplex::core {

// Splits one CSV line into fields; double-quoted fields may hold commas and "" escapes.
std::vector<std::string> SplitCsvLine(std::string_view line);

// One device configuration per latency column, in column order. Each device's hardware,
// category and specs come from its row in `devices_csv` (blank numeric fields -> nullopt;
// a device without a row is its own hardware with unknown specs). A blank latency cell
// means "not measured" (no sample). InvalidArgument, naming line and column, for a number
// that does not parse, a non-positive or non-finite latency, an arch_index outside the
// space or an arch_str that disagrees with its index, or a duplicated device.
absl::StatusOr<std::vector<DeviceData>> ParseLatencyTable(std::string_view latency_csv,
                                                          std::string_view devices_csv,
                                                          const Nb201Space& space);

// A latency table of any registered space, keyed by architecture value (no index needed):
// one row per architecture, one column per device configuration.
struct SpaceLatencyTable {
  const ArchitectureSpace* space = nullptr;
  std::vector<Architecture> archs;  // row order, distinct
  struct Column {
    std::string device;
    std::string hardware;
    HardwareDescriptor descriptor;
    std::vector<double> latency_ms;  // per row of `archs`; NaN = not measured (blank cell)
  };
  std::vector<Column> devices;
};

// Parses `arch,<device>...` (FBNet's file; every registered space's canonical strings) or
// `arch_index,arch_str,<device>...` (NB201's file: arch_str is parsed, and must agree with
// arch_index). `space` null: the space is the first registered one that parses the first
// row's architecture. Devices CSV as for ParseLatencyTable. InvalidArgument naming line and
// column for a malformed architecture (with the parser's message), a repeated architecture,
// a latency that is not a finite positive number, or a repeated device.
absl::StatusOr<SpaceLatencyTable> ParseSpaceLatencyTable(std::string_view latency_csv,
                                                         std::string_view devices_csv,
                                                         const ArchitectureSpace* space = nullptr);

// Just the devices CSV: device id -> (hardware, descriptor), in row order.
struct DeviceRow {
  std::string device;
  std::string hardware;
  HardwareDescriptor descriptor;
};
absl::StatusOr<std::vector<DeviceRow>> ParseDevicesCsv(std::string_view devices_csv);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_DATASET_LATENCY_TABLE_H_

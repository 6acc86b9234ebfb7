// Fuzz target: the importer's CSV parsers (the wide latency table, any space's table keyed by
// architecture value, and the devices table).
// The input is the latency CSV, then a NUL byte, then the devices CSV. Whatever the bytes,
// parsing returns a status; what it accepts obeys the documented contract.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "core/arch/nb201_space.h"
#include "core/dataset/latency_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view latency = input.substr(0, split);
  const std::string_view devices =
      split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
  (void)maplex::core::SplitCsvLine(latency.substr(0, latency.find('\n')));
  (void)maplex::core::ParseDevicesCsv(devices);
  const maplex::core::Nb201Space& space = maplex::core::Nb201Space::Get();
  auto by_value = maplex::core::ParseSpaceLatencyTable(latency, devices);
  if (by_value.ok()) {
    std::set<std::string> archs, ids;
    for (const maplex::core::Architecture& a : by_value->archs) {
      if (a.space() != by_value->space || !archs.insert(a.ToString()).second) std::abort();
    }
    for (const auto& column : by_value->devices) {
      if (!ids.insert(column.device).second) std::abort();
      if (column.latency_ms.size() != by_value->archs.size()) std::abort();
      for (double ms : column.latency_ms) {
        if (!std::isnan(ms) && (!std::isfinite(ms) || ms <= 0)) std::abort();
      }
    }
  }
  auto table = maplex::core::ParseLatencyTable(latency, devices, space);
  if (!table.ok()) return 0;
  std::set<std::string> ids;
  for (const maplex::core::DeviceData& d : *table) {
    if (!ids.insert(d.device).second) std::abort();  // duplicated device accepted
    std::set<int32_t> archs;
    for (const maplex::core::LatencySample& s : d.samples) {
      if (s.arch_index < 0 || s.arch_index >= space.size()) std::abort();
      if (!std::isfinite(s.latency_ms) || s.latency_ms <= 0) std::abort();
      if (!archs.insert(s.arch_index).second) std::abort();
    }
  }
  return 0;
}

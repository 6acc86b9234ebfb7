// Fuzz target: the NB201 cell-string parser. Any input either fails with a status or
// yields a cell that formats back to a string parsing to the same cell.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/arch/nb201_space.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using maplex::core::Nb201Space;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<maplex::core::Nb201Cell> cell = Nb201Space::ParseCell(text);
  if (!cell.ok()) return 0;
  const int code = Nb201Space::CellCode(*cell);
  absl::StatusOr<maplex::core::Nb201Cell> again = Nb201Space::ParseCell(Nb201Space::FormatCell(*cell));
  if (!again.ok() || Nb201Space::CellCode(*again) != code ||
      Nb201Space::CellCode(Nb201Space::CellFromCode(code)) != code) {
    std::abort();
  }
  return 0;
}

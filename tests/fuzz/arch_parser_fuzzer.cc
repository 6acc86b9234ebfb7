// Fuzz target: the architecture parsers of every registered space (NB201 cell strings and
// index alias, FBNet block lists). Any input either fails with a status or yields an
// architecture whose canonical string parses back to the same value, with in-range choices.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/arch/nb201_space.h"
#include "core/arch/space_registry.h"

namespace {

void CheckSpace(const maplex::core::ArchitectureSpace& space, std::string_view text) {
  absl::StatusOr<maplex::core::Architecture> a = space.Parse(text);
  if (!a.ok()) {
    if (a.status().message().empty()) std::abort();
    return;
  }
  if (a->space() != &space || a->size() != space.positions()) std::abort();
  for (int p = 0; p < a->size(); ++p) {
    if (a->choice(p) >= space.options(p)) std::abort();
  }
  const std::string canonical = space.Format(*a);
  absl::StatusOr<maplex::core::Architecture> again = space.Parse(canonical);
  if (!again.ok() || *again != *a || space.Format(*again) != canonical) std::abort();
  (void)space.Cost(*a);
  (void)space.PrimitiveCount(*a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using maplex::core::Nb201Space;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<maplex::core::Nb201Cell> cell = Nb201Space::ParseCell(text);
  if (cell.ok()) {
    const int code = Nb201Space::CellCode(*cell);
    absl::StatusOr<maplex::core::Nb201Cell> again =
        Nb201Space::ParseCell(Nb201Space::FormatCell(*cell));
    if (!again.ok() || Nb201Space::CellCode(*again) != code ||
        Nb201Space::CellCode(Nb201Space::CellFromCode(code)) != code) {
      std::abort();
    }
  }
  for (std::string_view name : maplex::core::SpaceNames()) {
    CheckSpace(*maplex::core::FindSpace(name), text);
  }
  return 0;
}

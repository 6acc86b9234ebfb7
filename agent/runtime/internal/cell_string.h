// NB201 cell string form for the agent's own use (the command runtime's protocol, tests).
// Private and minimal on purpose: core/arch owns architecture parsing for the project and
// replaces this once it lands.
//
//   Nb201CellString(cell) == "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|"
#ifndef MAPLEX_AGENT_RUNTIME_INTERNAL_CELL_STRING_H_
#define MAPLEX_AGENT_RUNTIME_INTERNAL_CELL_STRING_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/runtime/nb201_network.h"

namespace maplex::agent::runtime_internal {

const char* Nb201OpName(Nb201Op op);
std::string Nb201CellString(const Nb201Cell& cell);
// InvalidArgument naming the offending part for anything but the exact string form.
absl::StatusOr<Nb201Cell> ParseNb201CellString(absl::string_view text);

}  // namespace maplex::agent::runtime_internal

#endif  // MAPLEX_AGENT_RUNTIME_INTERNAL_CELL_STRING_H_

// The architecture spaces by name. Adding a space is one new file (its ArchitectureSpace) and
// one line in space_registry.cc.
//
//   const ArchitectureSpace* space = FindSpace("fbnet");
//   absl::StatusOr<Architecture> a = ParseArchitecture("nb201", "|nor_conv_3x3~0|+|...|");
#ifndef MAPLEX_CORE_ARCH_SPACE_REGISTRY_H_
#define MAPLEX_CORE_ARCH_SPACE_REGISTRY_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/arch/architecture_space.h"

namespace maplex::core {

// The space registered under `name` or one of its aliases ("nasbench201" for "nb201");
// nullptr when none is.
const ArchitectureSpace* FindSpace(std::string_view name);

// Canonical names of every registered space, in registration order.
std::vector<std::string_view> SpaceNames();

// FindSpace + Parse: InvalidArgument naming the unknown space, or the parser's message.
absl::StatusOr<Architecture> ParseArchitecture(std::string_view space, std::string_view text);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_ARCH_SPACE_REGISTRY_H_

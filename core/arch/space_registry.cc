#include "core/arch/space_registry.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/arch/fbnet_space.h"
#include "core/arch/nb201_space.h"

namespace maplex::core {
namespace {

struct Registration {
  const ArchitectureSpace& (*get)();
  std::string_view alias;  // an older name still accepted ("" for none)
};

const ArchitectureSpace& GetNb201() { return Nb201Space::Get(); }
const ArchitectureSpace& GetFbnet() { return FbnetSpace::Get(); }

// One line per space.
constexpr Registration kSpaces[] = {
    {&GetNb201, "nasbench201"},
    {&GetFbnet, ""},
};

}  // namespace

const ArchitectureSpace* FindSpace(std::string_view name) {
  for (const Registration& r : kSpaces) {
    const ArchitectureSpace& space = r.get();
    if (name == space.name() || (!r.alias.empty() && name == r.alias)) return &space;
  }
  return nullptr;
}

std::vector<std::string_view> SpaceNames() {
  std::vector<std::string_view> names;
  for (const Registration& r : kSpaces) names.push_back(r.get().name());
  return names;
}

absl::StatusOr<Architecture> ParseArchitecture(std::string_view space, std::string_view text) {
  const ArchitectureSpace* s = FindSpace(space);
  if (s == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown architecture space \"", std::string(space), "\" (known: ",
                     absl::StrJoin(SpaceNames(), ", ",
                                   [](std::string* out, std::string_view n) { out->append(n); }),
                     ")"));
  }
  return s->Parse(text);
}

}  // namespace maplex::core

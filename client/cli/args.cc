#include "client/cli/args.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace maplex::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::set<std::string>& valued,
                                 const std::set<std::string>& flags) {
  Args args;
  bool options_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (options_done || !absl::StartsWith(a, "--") || a == "-") {
      args.positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flags.count(name)) {
      if (value.has_value()) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      args.values_.emplace(name, "");
    } else if (valued.count(name)) {
      if (!value.has_value()) {
        if (i + 1 >= argv.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        value = argv[++i];
      }
      args.values_.emplace(name, *value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    }
  }
  return args;
}

std::optional<std::string> Args::Get(const std::string& option) const {
  auto [begin, end] = values_.equal_range(option);
  if (begin == end) return std::nullopt;
  return std::prev(end)->second;
}

std::string Args::GetOr(const std::string& option, const std::string& fallback) const {
  return Get(option).value_or(fallback);
}

std::vector<std::string> Args::GetAll(const std::string& option) const {
  std::vector<std::string> out;
  auto [begin, end] = values_.equal_range(option);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

}  // namespace maplex::cli

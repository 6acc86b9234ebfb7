// Command-line arguments of one `maplex` command: --key=value, --key value, --flag, and
// positionals, checked against the options the command declares.
#ifndef MAPLEX_CLIENT_CLI_ARGS_H_
#define MAPLEX_CLIENT_CLI_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace maplex::cli {

class Args {
 public:
  // `valued` options take a value; `flags` take none. An unknown option is an error that
  // names it. "--" ends options.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::set<std::string>& valued,
                                    const std::set<std::string>& flags);

  bool Has(const std::string& option) const { return values_.count(option) > 0; }
  // The last value given for `option`, if any.
  std::optional<std::string> Get(const std::string& option) const;
  std::string GetOr(const std::string& option, const std::string& fallback) const;
  // Every value given for a repeatable option, in order.
  std::vector<std::string> GetAll(const std::string& option) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

}  // namespace maplex::cli

#endif  // MAPLEX_CLIENT_CLI_ARGS_H_

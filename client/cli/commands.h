// The `maplex` command line: one function per command, each parsing its own options,
// printing results to stdout and problems to stderr, and returning the exit code
// (0 success, 1 the server or the data said no, 2 a usage error).
#ifndef MAPLEX_CLIENT_CLI_COMMANDS_H_
#define MAPLEX_CLIENT_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace maplex::cli {

// argv without the program name: [global options] COMMAND [command options].
int RunMaplexCli(const std::vector<std::string>& argv);

}  // namespace maplex::cli

#endif  // MAPLEX_CLIENT_CLI_COMMANDS_H_

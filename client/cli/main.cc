// maplex: the operator's and researcher's command line for a maplex server.
#include <string>
#include <vector>

#include "client/cli/commands.h"
#include "platform/grpc_transport.h"

int main(int argc, char** argv) {
  maplex::EnableLargeMessageTcpReads();  // before any gRPC object or thread exists
  return maplex::cli::RunMaplexCli(std::vector<std::string>(argv + 1, argv + argc));
}

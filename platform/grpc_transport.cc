#include "platform/grpc_transport.h"

#include <cstdlib>

namespace maplex {

const char* EnableLargeMessageTcpReads() {
  // overwrite = 0: an explicit GRPC_EXPERIMENTS (even empty) stays as it is.
  setenv("GRPC_EXPERIMENTS", kLargeMessageGrpcExperiments, /*overwrite=*/0);
  return std::getenv("GRPC_EXPERIMENTS");
}

}  // namespace maplex

// The one place an absl::Status becomes a grpc::Status (codes map one to one).
#ifndef MAPLEX_SERVER_RPC_STATUS_H_
#define MAPLEX_SERVER_RPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace maplex::server {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_RPC_STATUS_H_

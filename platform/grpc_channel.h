// How the CLI, the client library and the agent reach a maplex server: plaintext or TLS
// (optionally with a client certificate), and a bearer token sent with every call.
//
//   ChannelSecurity security;
//   security.token = *ResolveToken(flag_token, flag_token_file);  // or MAPLEX_TOKEN
//   security.ca_file = "/etc/maplex/ca.pem";
//   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
//       OpenChannel("maplex.lab:50051", security, grpc::ChannelArguments());
//
// The token rides in "authorization: Bearer <token>" metadata, added by a client
// interceptor: gRPC's call credentials would refuse a plaintext loopback channel.
#ifndef MAPLEX_PLATFORM_GRPC_CHANNEL_H_
#define MAPLEX_PLATFORM_GRPC_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace maplex {

struct ChannelSecurity {
  std::string token;             // bearer token; empty sends none
  std::string ca_file;           // PEM CA bundle that signed the server's certificate;
                                 // empty: plaintext
  std::string client_cert_file;  // PEM; for servers that require client certificates
  std::string client_key_file;
};

// The whole of a credential file (PEM certificate, key or CA bundle; token file), for the
// option `what` names. InvalidArgument when it cannot be read or is empty.
absl::StatusOr<std::string> ReadCredentialFile(const std::string& path, absl::string_view what);

// A channel to `address` with `security`. InvalidArgument when a file cannot be read, a
// client certificate comes without its key (or the other way round), or without ca_file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& address,
                                                           const ChannelSecurity& security,
                                                           const grpc::ChannelArguments& args);

// The bearer token: `token` when set, else the first line of `token_file` when set, else
// the environment variable MAPLEX_TOKEN, else empty. InvalidArgument when both flags are
// given or the file cannot be read or is empty.
absl::StatusOr<std::string> ResolveToken(const std::string& token, const std::string& token_file);

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_GRPC_CHANNEL_H_

// Who is calling, and may they: the one place every RPC handler asks before it acts.
//
// In AuthMode::kToken a call carries "authorization: Bearer <secret>" metadata; the
// secret names a token (server/auth/token_registry.h) and its role. Each RPC lists the
// roles it admits (kPolicy in authorizer.cc); an operator may call every RPC. An agent
// token is also bound to one device: handlers check every device id the request names
// with CheckDevice. A replica token may only follow models and token digests. In
// AuthMode::kNone every caller is the local operator (the server refuses that mode on a
// non-loopback address unless told otherwise; see server.h). A predictor replica with
// tokens checks them against a TokenRegistry::Mirror of its primary's.
//
// gRPC's C++ server interceptors cannot end a call with a status, and an
// AuthMetadataProcessor needs secure credentials (not loopback plaintext), so each
// handler calls Authorize first:
//
//   absl::StatusOr<Caller> caller =
//       authorizer_->Authorize(*context, "/maplex.v1.Ingest/NextTasks");
//   if (!caller.ok()) return ToGrpcStatus(caller.status());
//   absl::Status s = Authorizer::CheckDevice(*caller, request->device_id(), "device_id");
//
// The health and reflection services are gRPC's own and stay open: they reveal serving
// status and the schema, no data.
#ifndef MAPLEX_SERVER_AUTH_AUTHORIZER_H_
#define MAPLEX_SERVER_AUTH_AUTHORIZER_H_

#include <grpcpp/server_context.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "maplex/v1/tokens.pb.h"
#include "server/auth/token_registry.h"

namespace maplex::server {

enum class AuthMode {
  kNone,   // no credentials asked; every caller is the operator
  kToken,  // bearer tokens
};

// "none" or "token"; InvalidArgument otherwise.
absl::StatusOr<AuthMode> ParseAuthMode(absl::string_view text);

// The authenticated caller of one RPC.
struct Caller {
  maplex::v1::Role role = maplex::v1::ROLE_UNSPECIFIED;
  std::string device_id;  // agent tokens: the device it is bound to
  int64_t token_id = 0;   // 0 when AuthMode::kNone
};

class Authorizer {
 public:
  // `tokens` is used only in AuthMode::kToken and must then outlive the authorizer.
  Authorizer(AuthMode mode, const TokenRegistry* tokens) : mode_(mode), tokens_(tokens) {}

  // The caller of `method` ("/maplex.v1.Service/Method"). Unauthenticated when the token
  // is missing, malformed, unknown or revoked; PermissionDenied when its role may not
  // call `method` (or no policy names `method`). Sync and callback handlers alike: only
  // the client's metadata is read.
  absl::StatusOr<Caller> Authorize(const grpc::ServerContextBase& context,
                                   absl::string_view method) const;

  // OK unless `caller` is an agent bound to another device than `device_id`
  // (PermissionDenied naming `field`).
  static absl::Status CheckDevice(const Caller& caller, absl::string_view device_id,
                                  absl::string_view field);

  // The methods the policy names, for tests that check every RPC has one.
  static std::vector<std::string> PolicyMethods();

  AuthMode mode() const { return mode_; }

 private:
  const AuthMode mode_;
  const TokenRegistry* const tokens_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_AUTH_AUTHORIZER_H_

// The first operator token of a server that uses tokens. Without one nobody could create
// the others, so when no operator token is active the server makes one and writes its
// secret to a file only the server's user can read:
//
//   maplex-server --auth=token --bootstrap_token_file=/var/lib/maplex/operator.token
//   maplex --token_file=/var/lib/maplex/operator.token tokens create --role client
//
// While an operator token is active nothing is bootstrapped: operators manage tokens with
// the CLI. An operator who revoked every operator token recovers the same way (whoever
// may restart the server with a flag holds its database anyway). The file is created,
// never overwritten.
#ifndef MAPLEX_SERVER_AUTH_BOOTSTRAP_TOKEN_H_
#define MAPLEX_SERVER_AUTH_BOOTSTRAP_TOKEN_H_

#include <string>

#include "absl/status/status.h"
#include "server/auth/token_registry.h"

namespace maplex::server {

// When no unrevoked operator token exists and `path` is set: creates an operator token
// named "bootstrap" and writes its secret (and a newline) to `path`, mode 0600.
// FailedPrecondition when `path` exists already (it is left as it is; no token is made),
// or when no token at all exists and `path` is empty (nobody could call the server).
// OK, doing nothing, when an operator token is active, or (with a warning) when other
// tokens exist but no operator's and `path` is empty.
absl::Status BootstrapOperatorToken(TokenRegistry& tokens, const std::string& path);

// The other way to the first operator token, for deployments whose secrets come from
// outside (a Kubernetes Secret mounted read-only): the operator chooses the secret and
// the server registers its hash as an operator token named "operator-secret-file".
//
//   kubectl create secret generic maplex-operator-token
//       --from-literal=token="mplx_$(openssl rand -hex 32)"    (one command)
//   maplex-server --auth=token --operator_token_file=/etc/maplex/operator/token
//
// Reads the first line of `path` (surrounding whitespace dropped). Registers it unless a
// token with this secret exists; a revoked one stays revoked (revoking is how the operator
// retires the Secret; a new Secret value makes a new token). InvalidArgument when the
// file cannot be read or the secret is too weak (TokenRegistry::Import).
absl::Status RegisterOperatorSecretFile(TokenRegistry& tokens, const std::string& path);

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_AUTH_BOOTSTRAP_TOKEN_H_

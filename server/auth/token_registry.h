// The bearer tokens the server accepts: created, listed and revoked through the store,
// and looked up per call from an in-memory copy (this server is the only writer of its
// store, so the copy is exact). A token's secret is returned once, by Create; only its
// SHA-256 is kept. Secrets are 256 random bits, so an unsalted hash is enough: there is
// nothing to guess from a dictionary.
//
//   absl::StatusOr<std::unique_ptr<TokenRegistry>> tokens = TokenRegistry::Load(store);
//   absl::StatusOr<TokenRegistry::Created> t =
//       (*tokens)->Create(v1::ROLE_AGENT, "pi-4-eigen", "lab bench 3");
//   absl::StatusOr<v1::Token> who = (*tokens)->Find(t->secret);   // the agent token
#ifndef MAPLEX_SERVER_AUTH_TOKEN_REGISTRY_H_
#define MAPLEX_SERVER_AUTH_TOKEN_REGISTRY_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "maplex/v1/tokens.pb.h"
#include "server/store/store.h"

namespace maplex::server {

class TokenRegistry {
 public:
  // Reads every stored token. `store` must outlive the registry.
  static absl::StatusOr<std::unique_ptr<TokenRegistry>> Load(Store* store);

  // A replica's copy of its primary's tokens (server/token_follower.h fills it): no store,
  // Create and Revoke are FailedPrecondition, and Find answers only while the copy is
  // fresh: Unavailable before the first ReplaceAll and once its `fresh_until` passed, so a
  // token revoked on the primary stops working here within that bound even when the
  // primary cannot be reached.
  static std::unique_ptr<TokenRegistry> Mirror();
  // Mirror only: the primary's complete set of unrevoked tokens (each heartbeat resends
  // it), trusted until `fresh_until`.
  void ReplaceAll(const maplex::v1::TokenDigests& digests, absl::Time fresh_until);

  // Primary: the unrevoked tokens with their secrets' digests, for replicas.
  maplex::v1::TokenDigests ActiveDigests() const;
  // Counts the changes (Create, Revoke); a watcher resends the digests when it moved.
  uint64_t generation() const;

  struct Created {
    maplex::v1::Token token;
    std::string secret;  // "mplx_" + 64 hex digits
  };
  // A new token. InvalidArgument when the role is unspecified, an agent token has no
  // device, or another role names one.
  absl::StatusOr<Created> Create(maplex::v1::Role role, const std::string& device_id,
                                 const std::string& name);
  // A new token whose secret the operator chose (a Kubernetes Secret, say), kept as its
  // hash like any other. InvalidArgument as Create, or when the secret is shorter than 32
  // characters or holds characters other than letters, digits, '_', '-' and '.';
  // AlreadyExists (naming the token id) when a token, revoked or not, has this secret.
  absl::StatusOr<maplex::v1::Token> Import(maplex::v1::Role role, const std::string& device_id,
                                           const std::string& name, absl::string_view secret);
  // Every token, revoked ones included, by id.
  std::vector<maplex::v1::Token> List() const;
  // NotFound when no token has this id. Revocation is in effect (Find refuses the token)
  // when this returns.
  absl::StatusOr<maplex::v1::Token> Revoke(int64_t id);
  // The token whose secret this is. Unauthenticated when it is unknown or revoked. Never
  // waits for Create or Revoke writing to the store.
  absl::StatusOr<maplex::v1::Token> Find(absl::string_view secret) const;

 private:
  explicit TokenRegistry(Store* store) : store_(store) {}
  // Validates and stores a token with this secret.
  absl::StatusOr<maplex::v1::Token> Add(maplex::v1::Role role, const std::string& device_id,
                                        const std::string& name, absl::string_view secret);

  Store* const store_;  // null for a mirror
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, maplex::v1::Token> by_hash_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time fresh_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // mirror only
  bool received_ ABSL_GUARDED_BY(mu_) = false;                          // mirror only
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_AUTH_TOKEN_REGISTRY_H_

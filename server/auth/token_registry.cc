#include "server/auth/token_registry.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace maplex::server {
namespace {

std::string Sha256(absl::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

absl::StatusOr<std::string> NewSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("the system random generator failed; no token was created");
  }
  return absl::StrCat("mplx_", absl::BytesToHexString(absl::string_view(
                                   reinterpret_cast<char*>(bytes), sizeof(bytes))));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenRegistry>> TokenRegistry::Load(Store* store) {
  absl::StatusOr<std::vector<StoredToken>> stored = store->ListTokens();
  if (!stored.ok()) return stored.status();
  std::unique_ptr<TokenRegistry> registry(new TokenRegistry(store));
  std::lock_guard<std::mutex> lock(registry->mu_);
  for (StoredToken& t : *stored) registry->by_hash_[t.secret_sha256] = std::move(t.token);
  return registry;
}

absl::StatusOr<TokenRegistry::Created> TokenRegistry::Create(maplex::v1::Role role,
                                                             const std::string& device_id,
                                                             const std::string& name) {
  absl::StatusOr<std::string> secret = NewSecret();
  if (!secret.ok()) return secret.status();
  absl::StatusOr<maplex::v1::Token> token = Add(role, device_id, name, *secret);
  if (!token.ok()) return token.status();
  return Created{*std::move(token), *std::move(secret)};
}

absl::StatusOr<maplex::v1::Token> TokenRegistry::Import(maplex::v1::Role role,
                                                        const std::string& device_id,
                                                        const std::string& name,
                                                        absl::string_view secret) {
  if (secret.size() < 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret: ", secret.size(),
                     " characters; a token secret has at least 32 (e.g. "
                     "\"mplx_$(openssl rand -hex 32)\")"));
  }
  for (char c : secret) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError(
          "secret: only letters, digits, '_', '-' and '.' (it travels in a header)");
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_hash_.find(Sha256(secret));
    if (it != by_hash_.end()) {
      return absl::AlreadyExistsError(absl::StrCat("token ", it->second.id(),
                                                   it->second.revoked() ? " (revoked)" : "",
                                                   " has this secret already"));
    }
  }
  return Add(role, device_id, name, secret);
}

absl::StatusOr<maplex::v1::Token> TokenRegistry::Add(maplex::v1::Role role,
                                                     const std::string& device_id,
                                                     const std::string& name,
                                                     absl::string_view secret) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("tokens are created on the primary, not a replica");
  }
  if (role != maplex::v1::ROLE_AGENT && role != maplex::v1::ROLE_CLIENT &&
      role != maplex::v1::ROLE_OPERATOR && role != maplex::v1::ROLE_REPLICA) {
    return absl::InvalidArgumentError(absl::StrCat("role: ", maplex::v1::Role_Name(role),
                                                   " is not agent, client, operator or replica"));
  }
  if (role == maplex::v1::ROLE_AGENT && device_id.empty()) {
    return absl::InvalidArgumentError("device_id: an agent token is bound to one device; name it");
  }
  if (role != maplex::v1::ROLE_AGENT && !device_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device_id: only agent tokens are bound to a device, not ", maplex::v1::Role_Name(role)));
  }
  maplex::v1::Token token;
  token.set_role(role);
  token.set_device_id(device_id);
  token.set_name(name);
  std::string hash = Sha256(secret);
  // The store's commit (an fsync) runs without mu_: Find, which every authenticated call
  // takes, never waits for it. The token is usable once the map holds it.
  absl::StatusOr<StoredToken> stored = store_->AddToken(token, hash);
  if (!stored.ok()) return stored.status();
  std::lock_guard<std::mutex> lock(mu_);
  by_hash_[hash] = stored->token;
  ++generation_;
  return stored->token;
}

std::vector<maplex::v1::Token> TokenRegistry::List() const {
  std::vector<maplex::v1::Token> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [hash, token] : by_hash_) tokens.push_back(token);
  }
  std::sort(tokens.begin(), tokens.end(),
            [](const maplex::v1::Token& a, const maplex::v1::Token& b) { return a.id() < b.id(); });
  return tokens;
}

absl::StatusOr<maplex::v1::Token> TokenRegistry::Revoke(int64_t id) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("tokens are revoked on the primary, not a replica");
  }
  // As in Create, the commit runs without mu_. Revocation is monotonic (a revoked token
  // stays revoked), so concurrent revokes of one token store the same record.
  absl::StatusOr<StoredToken> revoked = store_->RevokeToken(id);
  if (!revoked.ok()) return revoked.status();
  std::lock_guard<std::mutex> lock(mu_);
  by_hash_[revoked->secret_sha256] = revoked->token;
  ++generation_;
  return revoked->token;
}

std::unique_ptr<TokenRegistry> TokenRegistry::Mirror() {
  return std::unique_ptr<TokenRegistry>(new TokenRegistry(nullptr));
}

void TokenRegistry::ReplaceAll(const maplex::v1::TokenDigests& digests, absl::Time fresh_until) {
  absl::flat_hash_map<std::string, maplex::v1::Token> by_hash;
  for (const maplex::v1::TokenDigest& d : digests.tokens()) {
    // Only unrevoked tokens travel; a revoked one that did would still be refused by Find.
    if (d.secret_sha256().size() == SHA256_DIGEST_LENGTH) by_hash[d.secret_sha256()] = d.token();
  }
  std::lock_guard<std::mutex> lock(mu_);
  by_hash_ = std::move(by_hash);
  fresh_until_ = fresh_until;
  received_ = true;
  ++generation_;
}

maplex::v1::TokenDigests TokenRegistry::ActiveDigests() const {
  maplex::v1::TokenDigests digests;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [hash, token] : by_hash_) {
    if (token.revoked()) continue;
    maplex::v1::TokenDigest* d = digests.add_tokens();
    *d->mutable_token() = token;
    d->set_secret_sha256(hash);
  }
  return digests;
}

uint64_t TokenRegistry::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

absl::StatusOr<maplex::v1::Token> TokenRegistry::Find(absl::string_view secret) const {
  std::string hash = Sha256(secret);
  std::lock_guard<std::mutex> lock(mu_);
  if (store_ == nullptr && !received_) {
    return absl::UnavailableError(
        "this replica has not yet received the primary's tokens; try again shortly");
  }
  if (store_ == nullptr && absl::Now() > fresh_until_) {
    // The copy may miss a revocation: refuse rather than trust it.
    return absl::UnavailableError(absl::StrCat(
        "this replica has not heard its primary's tokens since ",
        absl::FormatTime(fresh_until_, absl::UTCTimeZone()), "; it cannot check tokens"));
  }
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return absl::UnauthenticatedError("the bearer token is not known");
  if (it->second.revoked()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the bearer token (id ", it->second.id(), ") is revoked"));
  }
  return it->second;
}

}  // namespace maplex::server

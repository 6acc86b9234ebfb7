#include "server/auth/token_registry.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

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
  if (role != maplex::v1::ROLE_AGENT && role != maplex::v1::ROLE_CLIENT &&
      role != maplex::v1::ROLE_OPERATOR) {
    return absl::InvalidArgumentError(
        absl::StrCat("role: ", maplex::v1::Role_Name(role), " is not agent, client or operator"));
  }
  if (role == maplex::v1::ROLE_AGENT && device_id.empty()) {
    return absl::InvalidArgumentError("device_id: an agent token is bound to one device; name it");
  }
  if (role != maplex::v1::ROLE_AGENT && !device_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device_id: only agent tokens are bound to a device, not ", maplex::v1::Role_Name(role)));
  }
  absl::StatusOr<std::string> secret = NewSecret();
  if (!secret.ok()) return secret.status();
  maplex::v1::Token token;
  token.set_role(role);
  token.set_device_id(device_id);
  token.set_name(name);
  std::string hash = Sha256(*secret);
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StoredToken> stored = store_->AddToken(token, hash);
  if (!stored.ok()) return stored.status();
  by_hash_[hash] = stored->token;
  return Created{stored->token, *std::move(secret)};
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
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<StoredToken> revoked = store_->RevokeToken(id);
  if (!revoked.ok()) return revoked.status();
  by_hash_[revoked->secret_sha256] = revoked->token;
  return revoked->token;
}

absl::StatusOr<maplex::v1::Token> TokenRegistry::Find(absl::string_view secret) const {
  std::string hash = Sha256(secret);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return absl::UnauthenticatedError("the bearer token is not known");
  if (it->second.revoked()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the bearer token (id ", it->second.id(), ") is revoked"));
  }
  return it->second;
}

}  // namespace maplex::server

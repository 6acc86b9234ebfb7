#include "server/auth/authorizer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace maplex::server {
namespace {

using maplex::v1::Role;

// Which roles besides the operator may call each RPC. An agent's device binding is
// checked by the handler (Authorizer::CheckDevice), which sees the request.
struct MethodPolicy {
  const char* method;
  bool agent;
  bool client;
  bool replica = false;  // a predictor replica following this server
};

constexpr MethodPolicy kPolicy[] = {
    // An agent enrolls its own device; clients read the registry; changes are operators'.
    {"/maplex.v1.DeviceRegistry/RegisterDevice", true, false},
    {"/maplex.v1.DeviceRegistry/GetDevice", false, true},
    {"/maplex.v1.DeviceRegistry/ListDevices", false, true},
    {"/maplex.v1.DeviceRegistry/ListMeasurements", false, true},
    {"/maplex.v1.DeviceRegistry/UpdateDevice", false, false},
    {"/maplex.v1.DeviceRegistry/RetireDevice", false, false},
    {"/maplex.v1.Ingest/StreamMeasurements", true, false},
    {"/maplex.v1.Ingest/ReportDescriptor", true, false},
    {"/maplex.v1.Ingest/NextTasks", true, false},
    {"/maplex.v1.Predictor/Predict", false, true},
    {"/maplex.v1.Predictor/PredictStream", false, true},
    {"/maplex.v1.Models/ListModels", false, true},
    {"/maplex.v1.Models/GetModel", false, true},
    {"/maplex.v1.Models/WatchModels", false, true, true},
    {"/maplex.v1.Models/Retrain", false, false},
    {"/maplex.v1.Tokens/CreateToken", false, false},
    {"/maplex.v1.Tokens/ListTokens", false, false},
    {"/maplex.v1.Tokens/RevokeToken", false, false},
    // Digests, never secrets, and still only for whoever checks tokens in this server's name.
    {"/maplex.v1.Tokens/WatchTokenDigests", false, false, true},
};

const MethodPolicy* FindPolicy(absl::string_view method) {
  for (const MethodPolicy& p : kPolicy) {
    if (method == p.method) return &p;
  }
  return nullptr;
}

std::string RoleName(Role role) {
  switch (role) {
    case maplex::v1::ROLE_AGENT:
      return "agent";
    case maplex::v1::ROLE_CLIENT:
      return "client";
    case maplex::v1::ROLE_OPERATOR:
      return "operator";
    case maplex::v1::ROLE_REPLICA:
      return "replica";
    default:
      return "unspecified";
  }
}

}  // namespace

absl::StatusOr<AuthMode> ParseAuthMode(absl::string_view text) {
  if (text == "none") return AuthMode::kNone;
  if (text == "token") return AuthMode::kToken;
  return absl::InvalidArgumentError(absl::StrCat("auth: \"", text, "\" is not none or token"));
}

absl::StatusOr<Caller> Authorizer::Authorize(const grpc::ServerContextBase& context,
                                             absl::string_view method) const {
  const MethodPolicy* policy = FindPolicy(method);
  if (policy == nullptr) {
    // Fail closed: an RPC added without a policy is refused to everyone.
    return absl::PermissionDeniedError(absl::StrCat(method, " has no access policy"));
  }
  if (mode_ == AuthMode::kNone) return Caller{maplex::v1::ROLE_OPERATOR, "", 0};

  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "no credentials: send the metadata \"authorization: Bearer <token>\" (--token or "
        "--token_file)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not of the form \"Bearer <token>\"");
  }
  absl::StatusOr<maplex::v1::Token> token =
      tokens_->Find(absl::StripAsciiWhitespace(value.substr(kScheme.size())));
  if (!token.ok()) return token.status();

  bool allowed = token->role() == maplex::v1::ROLE_OPERATOR ||
                 (token->role() == maplex::v1::ROLE_AGENT && policy->agent) ||
                 (token->role() == maplex::v1::ROLE_CLIENT && policy->client) ||
                 (token->role() == maplex::v1::ROLE_REPLICA && policy->replica);
  if (!allowed) {
    return absl::PermissionDeniedError(absl::StrCat("token ", token->id(), " has role ",
                                                    RoleName(token->role()),
                                                    ", which may not call ", method));
  }
  return Caller{token->role(), token->device_id(), token->id()};
}

absl::Status Authorizer::CheckDevice(const Caller& caller, absl::string_view device_id,
                                     absl::string_view field) {
  if (caller.role != maplex::v1::ROLE_AGENT || device_id == caller.device_id) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(field, ": agent token ", caller.token_id,
                                                  " is bound to device \"", caller.device_id,
                                                  "\", not \"", device_id, "\""));
}

std::vector<std::string> Authorizer::PolicyMethods() {
  std::vector<std::string> methods;
  for (const MethodPolicy& p : kPolicy) methods.push_back(p.method);
  return methods;
}

}  // namespace maplex::server

#include "server/auth/bootstrap_token.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "platform/grpc_channel.h"
#include "platform/log.h"

namespace maplex::server {

absl::Status BootstrapOperatorToken(TokenRegistry& tokens, const std::string& path) {
  std::vector<maplex::v1::Token> all = tokens.List();
  bool operator_active = std::any_of(all.begin(), all.end(), [](const maplex::v1::Token& t) {
    return t.role() == maplex::v1::ROLE_OPERATOR && !t.revoked();
  });
  if (operator_active) {
    if (!path.empty()) LogInfo("bootstrap_token_skipped", {{"why", "an operator token is active"}});
    return absl::OkStatus();
  }
  if (path.empty()) {
    if (!all.empty()) {
      LogWarning("no_operator_token", {{"why", "every operator token is revoked"},
                                       {"fix", "restart with --bootstrap_token_file=PATH"}});
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(
        "--auth=token but no token exists: start once with --bootstrap_token_file=PATH to "
        "create the first operator token");
  }
  // O_EXCL: never overwrite, never follow a planted symlink.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("bootstrap token file ", path, ": ", std::strerror(errno),
                     " (it is created, never overwritten; remove it or name another)"));
  }
  absl::StatusOr<TokenRegistry::Created> created =
      tokens.Create(maplex::v1::ROLE_OPERATOR, "", "bootstrap");
  if (!created.ok()) {
    close(fd);
    unlink(path.c_str());
    return created.status();
  }
  std::string line = created->secret + "\n";
  bool written =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  int saved_errno = errno;
  close(fd);
  if (!written) {
    // A token whose secret nobody holds must not stay valid.
    unlink(path.c_str());
    (void)tokens.Revoke(created->token.id());
    return absl::InternalError(
        absl::StrCat("bootstrap token file ", path, ": ", std::strerror(saved_errno)));
  }
  LogInfo("bootstrap_token_written",
          {{"path", path}, {"token_id", absl::StrCat(created->token.id())}});
  return absl::OkStatus();
}

absl::Status RegisterOperatorSecretFile(TokenRegistry& tokens, const std::string& path) {
  absl::StatusOr<std::string> text = ReadCredentialFile(path, "--operator_token_file");
  if (!text.ok()) return text.status();
  absl::string_view secret = absl::StripAsciiWhitespace(*text);
  secret = secret.substr(0, secret.find('\n'));
  secret = absl::StripAsciiWhitespace(secret);
  absl::StatusOr<maplex::v1::Token> token =
      tokens.Import(maplex::v1::ROLE_OPERATOR, "", "operator-secret-file", secret);
  if (absl::IsAlreadyExists(token.status())) {
    LogInfo("operator_secret_file_known",
            {{"path", path}, {"token", std::string(token.status().message())}});
    return absl::OkStatus();
  }
  if (!token.ok()) {
    return absl::Status(token.status().code(), absl::StrCat("--operator_token_file ", path, ": ",
                                                            token.status().message()));
  }
  LogInfo("operator_secret_file_registered",
          {{"path", path}, {"token_id", absl::StrCat(token->id())}});
  return absl::OkStatus();
}

}  // namespace maplex::server

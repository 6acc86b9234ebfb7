#include "platform/grpc_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace maplex {
namespace {

namespace gx = grpc::experimental;

// Adds the authorization metadata to every call of the channel.
class BearerTokenInterceptor : public gx::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string& header) : header_(header) {}
  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            gx::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", header_});
    }
    methods->Proceed();
  }

 private:
  const std::string& header_;
};

class BearerTokenInterceptorFactory : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(header_);
  }

 private:
  const std::string header_;
};

}  // namespace

absl::StatusOr<std::string> ReadCredentialFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read ", path));
  }
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const std::string& address,
                                                           const ChannelSecurity& security,
                                                           const grpc::ChannelArguments& args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (security.client_cert_file.empty() != security.client_key_file.empty()) {
    return absl::InvalidArgumentError("--client_cert and --client_key go together");
  }
  if (security.ca_file.empty()) {
    if (!security.client_cert_file.empty()) {
      return absl::InvalidArgumentError("--client_cert needs --ca (client certificates need TLS)");
    }
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    absl::StatusOr<std::string> ca = ReadCredentialFile(security.ca_file, "--ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    if (!security.client_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadCredentialFile(security.client_cert_file, "--client_cert");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadCredentialFile(security.client_key_file, "--client_key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
  }
  if (security.token.empty()) return grpc::CreateCustomChannel(address, credentials, args);
  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(security.token));
  return gx::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                 std::move(interceptors));
}

absl::StatusOr<std::string> ResolveToken(const std::string& token, const std::string& token_file) {
  if (!token.empty() && !token_file.empty()) {
    return absl::InvalidArgumentError("give --token or --token_file, not both");
  }
  if (!token.empty()) return token;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> text = ReadCredentialFile(token_file, "--token_file");
    if (!text.ok()) return text.status();
    std::string first_line = text->substr(0, text->find('\n'));
    absl::string_view secret = absl::StripAsciiWhitespace(first_line);
    if (secret.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--token_file: ", token_file, " is empty"));
    }
    return std::string(secret);
  }
  const char* env = std::getenv("MAPLEX_TOKEN");
  return std::string(env == nullptr ? "" : env);
}

}  // namespace maplex

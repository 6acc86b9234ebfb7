// Transport security and the listening policy of MaplexServer::Start (docs/RELIABILITY.md,
// "Transport security"): TLS with certificates the test makes with the openssl CLI, client
// certificates required and verified (mTLS), and no unauthenticated non-loopback address.
#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::TempDir;
using ::maplex::testing::TestServerOptions;
using ::testing::HasSubstr;

// A CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed,
// and a second ("rogue") CA with a client certificate of its own; P-256 keys, one day.
class Certificates {
 public:
  explicit Certificates(const TempDir& dir) : dir_(dir) {
    MakeCa("ca");
    MakeCa("rogue");
    MakeLeaf("server", "ca",
             "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
    MakeLeaf("client", "ca", "extendedKeyUsage=clientAuth");
    MakeLeaf("rogue_client", "rogue", "extendedKeyUsage=clientAuth");
  }
  std::string Pem(const std::string& name) const { return dir_.File(name + ".pem"); }
  std::string Key(const std::string& name) const { return dir_.File(name + ".key"); }
  bool ok() const { return ok_; }

 private:
  void Run(const std::string& command) {
    int rc = std::system((command + " 2>" + dir_.File("openssl.log")).c_str());
    EXPECT_EQ(rc, 0) << command;
    ok_ = ok_ && rc == 0;
  }
  std::string KeyOptions(const std::string& name) const {
    return "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + Key(name);
  }
  void MakeCa(const std::string& name) {
    Run("openssl req -x509 " + KeyOptions(name) + " -out " + Pem(name) +
        " -days 1 -subj /CN=maplex-test-" + name);
  }
  void MakeLeaf(const std::string& name, const std::string& ca, const std::string& extensions) {
    std::ofstream(dir_.File(name + ".ext")) << extensions << "\n";
    Run("openssl req " + KeyOptions(name) + " -out " + dir_.File(name + ".csr") +
        " -subj /CN=maplex-test-" + name);
    Run("openssl x509 -req -in " + dir_.File(name + ".csr") + " -CA " + Pem(ca) + " -CAkey " +
        Key(ca) + " -CAcreateserial -out " + Pem(name) + " -days 1 -extfile " +
        dir_.File(name + ".ext"));
  }

  const TempDir& dir_;
  bool ok_ = true;
};

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(certs_.ok()); }

  ServerOptions TlsOptions(bool require_client_cert) {
    ServerOptions options = TestServerOptions(dir_.File("maplex.db"));
    options.tls_cert_file = certs_.Pem("server");
    options.tls_key_file = certs_.Key("server");
    if (require_client_cert) options.tls_client_ca_file = certs_.Pem("ca");
    return options;
  }

  // ListDevices through a client with `security`: OK, or why not.
  absl::Status Call(const MaplexServer& server, ChannelSecurity security) {
    client::ClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(server.port());
    options.timeout = absl::Seconds(10);
    options.security = std::move(security);
    absl::StatusOr<client::MaplexClient> client = client::MaplexClient::Connect(options);
    if (!client.ok()) return client.status();
    return client->ListDevices(v1::ListDevicesRequest()).status();
  }

  // Trusts CA `ca` ("" for plaintext); presents `client`'s certificate when named.
  ChannelSecurity Security(const std::string& ca, const std::string& client = "",
                           const std::string& token = "") {
    ChannelSecurity security;
    security.token = token;
    if (!ca.empty()) security.ca_file = certs_.Pem(ca);
    if (!client.empty()) {
      security.client_cert_file = certs_.Pem(client);
      security.client_key_file = certs_.Key(client);
    }
    return security;
  }

  TempDir dir_;
  Certificates certs_{dir_};
};

TEST_F(SecurityTest, TlsServesClientsThatTrustItsCa) {
  auto server = MaplexServer::Start(TlsOptions(false));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Call(**server, Security("ca")).ok());
  // Plaintext, or a CA that did not sign the server's certificate: no connection.
  EXPECT_EQ(Call(**server, Security("")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call(**server, Security("rogue")).code(), absl::StatusCode::kUnavailable);
}

TEST_F(SecurityTest, MutualTlsRefusesClientsWithoutAValidCertificate) {
  auto server = MaplexServer::Start(TlsOptions(true));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Call(**server, Security("ca", "client")).ok());
  EXPECT_EQ(Call(**server, Security("ca")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call(**server, Security("ca", "rogue_client")).code(), absl::StatusCode::kUnavailable);
  // The server is unharmed by the refused handshakes.
  EXPECT_TRUE(Call(**server, Security("ca", "client")).ok());
}

TEST_F(SecurityTest, TokensTravelOverTls) {
  ServerOptions options = TlsOptions(false);
  options.auth = AuthMode::kToken;
  options.bootstrap_token_file = dir_.File("operator.token");
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string secret;
  std::getline(std::ifstream(options.bootstrap_token_file), secret);
  EXPECT_TRUE(Call(**server, Security("ca", "", secret)).ok());
  EXPECT_EQ(Call(**server, Security("ca")).code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(SecurityTest, BadTlsOptionsAreRefusedAtStart) {
  ServerOptions options = TlsOptions(false);
  options.tls_key_file = "";
  EXPECT_EQ(MaplexServer::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = TlsOptions(false);
  options.tls_cert_file = dir_.File("missing.pem");
  EXPECT_THAT(std::string(MaplexServer::Start(options).status().message()),
              HasSubstr("missing.pem"));
  options = TestServerOptions(dir_.File("maplex.db"));
  options.tls_client_ca_file = certs_.Pem("ca");  // client certificates need TLS
  EXPECT_EQ(MaplexServer::Start(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SecurityTest, NoUnauthenticatedNonLoopbackAddressUnlessAskedFor) {
  ServerOptions options = TestServerOptions(dir_.File("maplex.db"));
  options.listen_address = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<MaplexServer>> refused = MaplexServer::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--auth=token"));
  // Each way of saying who may call makes it acceptable.
  ServerOptions with_tokens = options;
  with_tokens.auth = AuthMode::kToken;
  with_tokens.bootstrap_token_file = dir_.File("operator.token");
  EXPECT_TRUE(MaplexServer::Start(with_tokens).ok());
  // Client certificates alone would make every holder an operator bound to no device:
  // they are a transport check, and need tokens for the role.
  ServerOptions with_client_certs = TlsOptions(true);
  with_client_certs.listen_address = "0.0.0.0:0";
  absl::StatusOr<std::unique_ptr<MaplexServer>> certs_only = MaplexServer::Start(with_client_certs);
  EXPECT_EQ(certs_only.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(certs_only.status().message()), HasSubstr("--tls_client_ca"));
  ServerOptions with_client_certs_and_tokens = with_client_certs;
  with_client_certs_and_tokens.auth = AuthMode::kToken;
  with_client_certs_and_tokens.bootstrap_token_file = dir_.File("operator2.token");
  EXPECT_TRUE(MaplexServer::Start(with_client_certs_and_tokens).ok());
  ServerOptions explicitly_open = options;
  explicitly_open.allow_unauthenticated_non_loopback = true;
  EXPECT_TRUE(MaplexServer::Start(explicitly_open).ok());
}

}  // namespace
}  // namespace maplex::server

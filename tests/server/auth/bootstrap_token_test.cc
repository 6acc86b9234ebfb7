#include "server/auth/bootstrap_token.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace maplex::server {
namespace {

using ::maplex::testing::TempDir;

std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

class BootstrapTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *Store::Open(dir_.File("maplex.db"));
    tokens_ = *TokenRegistry::Load(store_.get());
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<TokenRegistry> tokens_;
};

TEST_F(BootstrapTokenTest, WritesAWorkingOperatorTokenOnce) {
  std::string path = dir_.File("operator.token");
  ASSERT_TRUE(BootstrapOperatorToken(*tokens_, path).ok());
  absl::StatusOr<v1::Token> found = tokens_->Find(FirstLine(path));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->role(), v1::ROLE_OPERATOR);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  // With an operator token active, a second start makes none, whatever the file says.
  std::string other = dir_.File("other.token");
  ASSERT_TRUE(BootstrapOperatorToken(*tokens_, other).ok());
  EXPECT_FALSE(std::ifstream(other).good());
  EXPECT_EQ(tokens_->List().size(), 1u);
}

TEST_F(BootstrapTokenTest, NeverOverwritesAFile) {
  std::string path = dir_.File("operator.token");
  std::ofstream(path) << "precious\n";
  absl::Status s = BootstrapOperatorToken(*tokens_, path);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FirstLine(path), "precious");
  EXPECT_TRUE(tokens_->List().empty());
}

TEST_F(BootstrapTokenTest, RefusesAServerNobodyCouldCall) {
  absl::Status s = BootstrapOperatorToken(*tokens_, "");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("--bootstrap_token_file"));
}

TEST_F(BootstrapTokenTest, RecoversWhenEveryOperatorTokenIsRevoked) {
  absl::StatusOr<TokenRegistry::Created> op = tokens_->Create(v1::ROLE_OPERATOR, "", "first");
  ASSERT_TRUE(tokens_->Create(v1::ROLE_CLIENT, "", "nas").ok());
  ASSERT_TRUE(tokens_->Revoke(op->token.id()).ok());
  // Without a file the server still starts (clients keep working), with one it recovers.
  EXPECT_TRUE(BootstrapOperatorToken(*tokens_, "").ok());
  std::string path = dir_.File("operator.token");
  ASSERT_TRUE(BootstrapOperatorToken(*tokens_, path).ok());
  EXPECT_EQ(tokens_->Find(FirstLine(path))->role(), v1::ROLE_OPERATOR);
}

// A secret the operator chose, in a file the server may only read (a Kubernetes Secret):
// registered once as an operator token, kept revoked when revoked, weak ones refused.
TEST_F(BootstrapTokenTest, RegistersAnOperatorSecretFromAReadOnlyFile) {
  const std::string secret = "mplx_" + std::string(64, 'a');
  std::string path = dir_.File("secret-token");
  std::ofstream(path) << "  " << secret << "\n";
  ASSERT_EQ(chmod(path.c_str(), 0400), 0);
  ASSERT_TRUE(RegisterOperatorSecretFile(*tokens_, path).ok());
  absl::StatusOr<v1::Token> found = tokens_->Find(secret);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->role(), v1::ROLE_OPERATOR);
  // A restart finds it known; with an operator active, the bootstrap file is not written.
  ASSERT_TRUE(RegisterOperatorSecretFile(*tokens_, path).ok());
  EXPECT_EQ(tokens_->List().size(), 1u);
  ASSERT_TRUE(BootstrapOperatorToken(*tokens_, dir_.File("bootstrap.token")).ok());
  EXPECT_FALSE(std::ifstream(dir_.File("bootstrap.token")).good());
  // Revoked stays revoked across restarts.
  ASSERT_TRUE(tokens_->Revoke(found->id()).ok());
  ASSERT_TRUE(RegisterOperatorSecretFile(*tokens_, path).ok());
  EXPECT_EQ(tokens_->Find(secret).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(tokens_->List().size(), 1u);

  std::string weak = dir_.File("weak-token");
  std::ofstream(weak) << "hunter2\n";
  absl::Status s = RegisterOperatorSecretFile(*tokens_, weak);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("at least 32"));
  std::ofstream(weak) << std::string(40, 'x') << " spaced\n";
  EXPECT_EQ(RegisterOperatorSecretFile(*tokens_, weak).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterOperatorSecretFile(*tokens_, dir_.File("missing")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokens_->List().size(), 1u);
}

// A replica's mirror: unusable until the primary's digests arrived and after they aged.
TEST(TokenMirrorTest, AnswersOnlyWhileFresh) {
  std::unique_ptr<TokenRegistry> mirror = TokenRegistry::Mirror();
  EXPECT_EQ(mirror->Find("anything").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(mirror->Create(v1::ROLE_CLIENT, "", "x").status().code(),
            absl::StatusCode::kFailedPrecondition);

  TempDir dir;
  std::unique_ptr<Store> store = *Store::Open(dir.File("maplex.db"));
  std::unique_ptr<TokenRegistry> primary = *TokenRegistry::Load(store.get());
  absl::StatusOr<TokenRegistry::Created> client = primary->Create(v1::ROLE_CLIENT, "", "c");
  absl::StatusOr<TokenRegistry::Created> gone = primary->Create(v1::ROLE_CLIENT, "", "g");
  ASSERT_TRUE(client.ok() && gone.ok());
  ASSERT_TRUE(primary->Revoke(gone->token.id()).ok());
  v1::TokenDigests digests = primary->ActiveDigests();
  ASSERT_EQ(digests.tokens_size(), 1);  // the revoked one does not travel
  for (const v1::TokenDigest& d : digests.tokens()) {
    EXPECT_EQ(d.secret_sha256().find(client->secret), std::string::npos);
  }
  mirror->ReplaceAll(digests, absl::Now() + absl::Hours(1));
  absl::StatusOr<v1::Token> found = mirror->Find(client->secret);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id(), client->token.id());
  EXPECT_EQ(mirror->Find(gone->secret).status().code(), absl::StatusCode::kUnauthenticated);
  mirror->ReplaceAll(digests, absl::Now() - absl::Seconds(1));
  EXPECT_EQ(mirror->Find(client->secret).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace maplex::server

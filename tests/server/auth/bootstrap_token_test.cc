#include "server/auth/bootstrap_token.h"

#include <sys/stat.h>

#include <fstream>

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

}  // namespace
}  // namespace maplex::server

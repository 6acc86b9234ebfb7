#include "server/auth/token_registry.h"

#include <chrono>
#include <future>

#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::TempDir;

TEST(TokenRegistryTest, CreatedTokensAreFoundAndRevokedOnesRefused) {
  TempDir dir;
  auto store = *Store::Open(dir.File("maplex.db"));
  auto registry = *TokenRegistry::Load(store.get());
  auto created = registry->Create(v1::ROLE_CLIENT, "", "nas");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(registry->Find(created->secret)->id(), created->token.id());
  ASSERT_TRUE(registry->Revoke(created->token.id()).ok());
  EXPECT_EQ(registry->Find(created->secret).status().code(), absl::StatusCode::kUnauthenticated);
  // A reloaded registry agrees.
  auto reloaded = *TokenRegistry::Load(store.get());
  EXPECT_EQ(reloaded->Find(created->secret).status().code(), absl::StatusCode::kUnauthenticated);
}

// Every authenticated call runs Find; a token being created (its commit and fsync) must
// not hold it up.
TEST(TokenRegistryTest, FindDoesNotWaitForACreateCommitting) {
  TempDir dir;
  auto store = *Store::Open(dir.File("maplex.db"));
  auto registry = *TokenRegistry::Load(store.get());
  auto existing = *registry->Create(v1::ROLE_OPERATOR, "", "ops");

  std::promise<void> committing, release;
  std::shared_future<void> released = release.get_future().share();
  store->SetBeforeCommitHookForTest([&committing, released] {
    committing.set_value();
    released.wait();
  });
  auto create =
      std::async(std::launch::async, [&] { return registry->Create(v1::ROLE_CLIENT, "", "new"); });
  committing.get_future().wait();
  auto find = std::async(std::launch::async, [&] { return registry->Find(existing.secret); });
  const bool finished = find.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  release.set_value();
  ASSERT_TRUE(finished) << "Find waited for Create's commit";
  EXPECT_TRUE(find.get().ok());
  auto created = create.get();
  ASSERT_TRUE(created.ok()) << created.status();
  store->SetBeforeCommitHookForTest(nullptr);
  EXPECT_TRUE(registry->Find(created->secret).ok());
}

}  // namespace
}  // namespace maplex::server

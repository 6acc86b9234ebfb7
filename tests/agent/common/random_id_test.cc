#include "agent/common/random_id.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

TEST(RandomIdTest, IsThirtyTwoLowercaseHexDigits) {
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> id = NewMeasurementId();
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_EQ(id->size(), 32u) << *id;
    for (char c : *id) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << *id;
  }
}

TEST(RandomIdTest, NoCollisionsAndEveryBitVaries) {
  constexpr int kDraws = 100000;
  absl::flat_hash_set<std::string> seen;
  std::array<int, 128> ones{};
  for (int i = 0; i < kDraws; ++i) {
    std::string id = *NewMeasurementId();
    ASSERT_TRUE(seen.insert(id).second) << "collision after " << i << " draws: " << id;
    for (int digit = 0; digit < 32; ++digit) {
      int v = id[digit] <= '9' ? id[digit] - '0' : id[digit] - 'a' + 10;
      for (int bit = 0; bit < 4; ++bit) ones[digit * 4 + bit] += (v >> bit) & 1;
    }
  }
  // All 128 bits are random, not a 64-bit value padded or a counter: each is set in about
  // half of the draws (50 % +- 1 %, more than 6 standard deviations at 100k draws).
  for (int bit = 0; bit < 128; ++bit) {
    EXPECT_GT(ones[bit], kDraws * 49 / 100) << "bit " << bit;
    EXPECT_LT(ones[bit], kDraws * 51 / 100) << "bit " << bit;
  }
}

// A generator seeded once in the process (the old mt19937_64 from one 32-bit
// random_device draw) hands a forked child the same state, so parent and child make the
// same ids; so would two machines cloned from one image mid-run. Reading the kernel on
// every draw does not.
TEST(RandomIdTest, AForkedProcessDrawsDifferentIds) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  (void)*NewMeasurementId();  // the parent's source is "warm" before the fork
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string id = *NewMeasurementId();
    ssize_t written = write(pipe_fds[1], id.data(), id.size());
    _exit(written == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  std::string mine = *NewMeasurementId();
  std::string theirs(32, '\0');
  ASSERT_EQ(read(pipe_fds[0], theirs.data(), theirs.size()), 32);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_NE(mine, theirs);
}

TEST(RandomIdTest, FillRandomBytesFillsLargeBuffers) {
  std::string a(4096, '\0'), b(4096, '\0');
  ASSERT_TRUE(FillRandomBytes(a.data(), a.size()).ok());
  ASSERT_TRUE(FillRandomBytes(b.data(), b.size()).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, std::string(4096, '\0'));
}

}  // namespace
}  // namespace maplex::agent

#include "agent/measure/thread_pinner.h"

#include <sched.h>

#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

int AllowedCpus() {
  cpu_set_t set;
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  return CPU_COUNT(&set);
}

TEST(AffinityThreadPinnerTest, PinsAndRestores) {
  const int before = AllowedCpus();
  AffinityThreadPinner pinner;
  absl::StatusOr<std::vector<int>> cpus = pinner.Pin(1);
  if (!cpus.ok()) GTEST_SKIP() << "affinity not permitted here: " << cpus.status();
  ASSERT_EQ(cpus->size(), 1u);
  EXPECT_EQ(AllowedCpus(), 1);
  EXPECT_EQ(sched_getcpu(), (*cpus)[0]);
  pinner.Unpin();
  EXPECT_EQ(AllowedCpus(), before);
}

TEST(AffinityThreadPinnerTest, MoreThreadsThanCpusTakesAllOfThem) {
  const int before = AllowedCpus();
  AffinityThreadPinner pinner;
  absl::StatusOr<std::vector<int>> cpus = pinner.Pin(before + 3);
  if (!cpus.ok()) GTEST_SKIP() << "affinity not permitted here: " << cpus.status();
  EXPECT_EQ(static_cast<int>(cpus->size()), before);
  pinner.Unpin();
  EXPECT_EQ(AllowedCpus(), before);
  EXPECT_FALSE(pinner.Pin(0).ok());
}

}  // namespace
}  // namespace maplex::agent

#include "agent/spool/spool.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace maplex::agent {
namespace {

v1::Measurement M(const std::string& id, double ms) {
  v1::Measurement m;
  m.set_id(id);
  m.set_device_id("d");
  m.mutable_arch()->set_index(3);
  m.mutable_stats()->set_median_ms(ms);
  return m;
}

google::protobuf::RepeatedPtrField<std::string> Ids(std::initializer_list<const char*> ids) {
  google::protobuf::RepeatedPtrField<std::string> out;
  for (const char* id : ids) *out.Add() = id;
  return out;
}

TEST(SpoolTest, KeepsOrderSurvivesReopenAndForgetsOnlyAcked) {
  maplex::testing::TempDir dir;
  {
    auto spool = *Spool::Open(dir.File("spool.db"));
    ASSERT_TRUE(spool->Add(M("a", 1)).ok());
    ASSERT_TRUE(spool->Add(M("b", 2)).ok());
    ASSERT_TRUE(spool->Add(M("c", 3)).ok());
    ASSERT_TRUE(spool->Add(M("b", 2)).ok());  // already spooled: no-op
    EXPECT_EQ(*spool->Depth(), 3);
  }
  auto spool = *Spool::Open(dir.File("spool.db"));
  auto pending = spool->Pending(2);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].id(), "a");
  EXPECT_EQ((*pending)[1].stats().median_ms(), 2);
  ASSERT_TRUE(spool->Remove(Ids({"a", "zzz"})).ok());
  EXPECT_EQ(*spool->Depth(), 2);
  EXPECT_EQ((*spool->Pending(10))[0].id(), "b");
}

TEST(SpoolTest, RefusesForeignFilesAndIdlessMeasurements) {
  maplex::testing::TempDir dir;
  std::ofstream(dir.File("junk")) << std::string(5000, 'j');
  EXPECT_EQ(Spool::Open(dir.File("junk")).status().code(), absl::StatusCode::kFailedPrecondition);
  auto spool = *Spool::Open(dir.File("spool.db"));
  EXPECT_EQ(spool->Add(M("", 1)).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace maplex::agent

#include "platform/process.h"

#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex {
namespace {

using ::testing::HasSubstr;

class EnvOrTest : public ::testing::Test {
 protected:
  void SetUp() override { EnvValueErrors().clear(); }
  void TearDown() override {
    unsetenv("MAPLEX_TEST_VALUE");
    EnvValueErrors().clear();
  }
  void Set(const char* value) { setenv("MAPLEX_TEST_VALUE", value, 1); }
};

TEST_F(EnvOrTest, UnsetOrEmptyGivesTheFallback) {
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 7), 7);
  Set("");
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 2.5), 2.5);
  EXPECT_TRUE(EnvOr("MAPLEX_TEST_VALUE", true));
  EXPECT_TRUE(CheckEnvValues().ok());
}

TEST_F(EnvOrTest, WellFormedValuesParse) {
  Set("67108864");
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 1), 67108864);
  Set("0.25");
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 1.0), 0.25);
  Set("TRUE");
  EXPECT_TRUE(EnvOr("MAPLEX_TEST_VALUE", false));
  Set("no");
  EXPECT_FALSE(EnvOr("MAPLEX_TEST_VALUE", true));
  EXPECT_TRUE(CheckEnvValues().ok());
}

TEST_F(EnvOrTest, MalformedValuesAreErrorsNamingVariableAndValue) {
  Set("64MiB");
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 5), 5);
  Set("abc");
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 2.0), 2.0);
  Set("99999999999");  // beyond int
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 5), 5);
  Set("nan");
  EXPECT_EQ(EnvOr("MAPLEX_TEST_VALUE", 2.0), 2.0);
  Set("enabled");
  EXPECT_FALSE(EnvOr("MAPLEX_TEST_VALUE", false));
  absl::Status status = CheckEnvValues();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  for (const char* value : {"\"64MiB\"", "\"abc\"", "\"99999999999\"", "\"nan\"", "\"enabled\""}) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(value));
  }
  EXPECT_THAT(std::string(status.message()), HasSubstr("MAPLEX_TEST_VALUE="));
}

}  // namespace
}  // namespace maplex

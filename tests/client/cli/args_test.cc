#include "client/cli/args.h"

#include "gtest/gtest.h"

namespace maplex::cli {
namespace {

TEST(ArgsTest, ParsesValuesFlagsAndPositionals) {
  auto args = Args::Parse({"--device", "d1", "0", "--format=csv", "--all", "15624", "--label",
                           "a=1", "--label=b=2"},
                          {"device", "format", "label"}, {"all"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args->Get("device"), "d1");
  EXPECT_EQ(*args->Get("format"), "csv");
  EXPECT_TRUE(args->Has("all"));
  EXPECT_EQ(args->positionals(), (std::vector<std::string>{"0", "15624"}));
  EXPECT_EQ(args->GetAll("label"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(args->GetOr("missing", "x"), "x");
}

TEST(ArgsTest, RejectsUnknownAndIncompleteOptions) {
  EXPECT_EQ(Args::Parse({"--nope"}, {}, {}).status().message(), "unknown option --nope");
  EXPECT_EQ(Args::Parse({"--device"}, {"device"}, {}).status().message(),
            "--device needs a value");
  EXPECT_EQ(Args::Parse({"--all=1"}, {}, {"all"}).status().message(), "--all takes no value");
}

TEST(ArgsTest, DoubleDashEndsOptions) {
  auto args = Args::Parse({"--", "--not-an-option"}, {}, {});
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(args->positionals()[0], "--not-an-option");
}

}  // namespace
}  // namespace maplex::cli

#include "agent/runtime/command_runtime.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/arch/fbnet_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::agent {
namespace {

using ::testing::HasSubstr;

CommandRuntimeOptions FakeDevice(std::vector<std::string> flags) {
  const char* source = std::getenv("MAPLEX_SOURCE_DIR");
  CommandRuntimeOptions options;
  options.program = "/bin/sh";
  options.args = {std::string(source ? source : ".") +
                  "/tests/agent/runtime/fake_device_runtime.sh"};
  options.args.insert(options.args.end(), flags.begin(), flags.end());
  options.reply_timeout_ms = 5000;
  return options;
}

const Nb201Cell kCell = *core::Nb201Space::CellFromOpCodes({3, 0, 1, 2, 4, 3});

TEST(CommandRuntimeTest, PassesTheConfigurationAndReturnsTheProgramsLatencies) {
  const std::string record = ::testing::TempDir() + "/command_runtime_record";
  CommandRuntime runtime(FakeDevice({"--record=" + record}));
  EXPECT_EQ(runtime.name(), "command:sh");
  ASSERT_TRUE(runtime.Prepare(kCell, 4, 2).ok());
  std::ifstream in(record);
  std::stringstream recorded;
  recorded << in.rdbuf();
  EXPECT_EQ(recorded.str(), "nb201 " + core::Nb201Space::FormatCell(kCell) + " 4 2\n");
  for (int run = 1; run <= 3; ++run) {
    absl::StatusOr<std::optional<double>> ms = runtime.Run();
    ASSERT_TRUE(ms.ok()) << ms.status();
    ASSERT_TRUE(ms->has_value());
    EXPECT_DOUBLE_EQ(**ms, 42 + run / 10.0);
  }
  EXPECT_EQ(runtime.Output().status().code(), absl::StatusCode::kUnimplemented);
  // A second Prepare starts a fresh program: run numbers start again.
  ASSERT_TRUE(runtime.Prepare(kCell, 1, 1).ok());
  EXPECT_DOUBLE_EQ(**runtime.Run(), 11.1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(CommandRuntimeTest, PassesAnNb201CellAsProtocolVersion1Did) {
  const std::string args = ::testing::TempDir() + "/command_runtime_args";
  // The program is the shell printing its arguments: exactly --cell, --batch, --threads.
  CommandRuntimeOptions options;
  options.program = "/bin/sh";
  options.args = {"-c", "echo \"$@\" > " + args + "; echo ready; cat > /dev/null", "sh"};
  options.reply_timeout_ms = 5000;
  CommandRuntime runtime(options);
  ASSERT_TRUE(runtime.Prepare(kCell, 1, 3).ok());
  EXPECT_EQ(ReadFile(args),
            "--cell=" + core::Nb201Space::FormatCell(kCell) + " --batch=1 --threads=3\n");
}

TEST(CommandRuntimeTest, PassesTheSpaceAndCanonicalStringOfAnFbnetArchitecture) {
  const std::string record = ::testing::TempDir() + "/command_runtime_fbnet_record";
  const core::Architecture arch = core::FbnetSpace::Get().Sample(1, 4)[0];
  CommandRuntime runtime(FakeDevice({"--record=" + record}));
  ASSERT_TRUE(runtime.Prepare(arch, 2, 1).ok());
  EXPECT_EQ(ReadFile(record), "fbnet " + arch.ToString() + " 2 1\n");
  EXPECT_DOUBLE_EQ(**runtime.Run(), 21.1);
  EXPECT_EQ(runtime.Prepare(core::Architecture(), 1, 1).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CommandRuntimeTest, ReportsAProgramThatFailsToPrepare) {
  CommandRuntime runtime(FakeDevice({"--fail-prepare"}));
  absl::Status status = runtime.Prepare(kCell, 1, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("exited with status 3"));
  EXPECT_EQ(runtime.Run().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CommandRuntimeTest, ReportsBadReplies) {
  CommandRuntime failing(FakeDevice({"--fail-run"}));
  ASSERT_TRUE(failing.Prepare(kCell, 1, 1).ok());
  EXPECT_THAT(failing.Run().status().message(), HasSubstr("error device lost"));
  CommandRuntime garbage(FakeDevice({"--garbage"}));
  ASSERT_TRUE(garbage.Prepare(kCell, 1, 1).ok());
  EXPECT_THAT(garbage.Run().status().message(), HasSubstr("not a positive latency"));
}

TEST(CommandRuntimeTest, TimesOutASilentProgram) {
  CommandRuntimeOptions options = FakeDevice({"--silent"});
  options.reply_timeout_ms = 200;
  CommandRuntime runtime(options);
  ASSERT_TRUE(runtime.Prepare(kCell, 1, 1).ok());
  EXPECT_EQ(runtime.Run().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(runtime.Run().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CommandRuntimeTest, ReportsAMissingProgram) {
  CommandRuntime runtime({"/nonexistent/runtime", {}, 1000});
  EXPECT_EQ(runtime.Prepare(kCell, 1, 1).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(runtime.Prepare(kCell, 0, 1).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace maplex::agent

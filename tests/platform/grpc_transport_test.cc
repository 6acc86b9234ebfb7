#include "platform/grpc_transport.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace maplex {
namespace {

TEST(GrpcTransportTest, TurnsTheTcpReadsOnUnlessTheEnvironmentSaysOtherwise) {
  unsetenv("GRPC_EXPERIMENTS");
  EXPECT_STREQ(EnableLargeMessageTcpReads(), kLargeMessageGrpcExperiments);
  EXPECT_STREQ(std::getenv("GRPC_EXPERIMENTS"), kLargeMessageGrpcExperiments);

  // An operator's value wins, including the empty one that turns them off.
  setenv("GRPC_EXPERIMENTS", "", 1);
  EXPECT_STREQ(EnableLargeMessageTcpReads(), "");
  setenv("GRPC_EXPERIMENTS", "tcp_rcv_lowat", 1);
  EXPECT_STREQ(EnableLargeMessageTcpReads(), "tcp_rcv_lowat");
  unsetenv("GRPC_EXPERIMENTS");
}

}  // namespace
}  // namespace maplex

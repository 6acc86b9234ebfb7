#include "server/listen_address.h"

#include "gtest/gtest.h"

namespace maplex::server {
namespace {

TEST(IsLoopbackAddressTest, LoopbackHostsInEveryFormGrpcAccepts) {
  for (const char* address :
       {"127.0.0.1:50051", "127.1.2.3:1", "127.255.255.255:0", "localhost:50051", "LocalHost:50051",
        "localhost", "127.0.0.1", "[::1]:50051", "[::1]", "[0:0:0:0:0:0:0:1]:7",
        "[::ffff:127.0.0.1]:50051", "ipv4:127.0.0.1:50051", "ipv6:[::1]:50051"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
}

TEST(IsLoopbackAddressTest, NamesThatMerelyStartLikeLoopbackAreNot) {
  for (const char* address : {"127.evil.com:50051",
                              "localhost.attacker:50051",
                              "localhost.:50051",
                              "127.0.0.1.nip.io:50051",
                              "127.1:50051",
                              "0.0.0.0:50051",
                              "[::]:50051",
                              "10.0.0.1:50051",
                              "128.0.0.1:50051",
                              "[::2]:50051",
                              "[::ffff:10.0.0.1]:50051",
                              "maplex-primary:50051",
                              ":50051",
                              "",
                              "[::1:50051",
                              "[::1]x",
                              "[::1]:port",
                              "127.0.0.1:50051x",
                              "::1:50051",
                              "ipv4:[::1]:50051",
                              "ipv6:127.0.0.1:50051",
                              "ipv4:localhost:50051",
                              "unix:/tmp/maplex.sock",
                              "dns:///localhost:50051"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

}  // namespace
}  // namespace maplex::server

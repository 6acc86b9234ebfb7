#include "platform/metrics/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace maplex::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// Sends `request` to 127.0.0.1:port and returns everything the server answered.
std::string Exchange(int port, const std::string& request) {
  int fd = Connect(port);
  EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  return response;
}

class MetricsEndpointTest : public ::testing::Test {
 protected:
  void Start(const MetricsEndpointOptions& options = MetricsEndpointOptions()) {
    prometheus::BuildCounter()
        .Name("hits_total")
        .Help("Hits.")
        .Register(*registry_)
        .Add({})
        .Increment(7);
    auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", {registry_}, options);
    ASSERT_TRUE(endpoint.ok()) << endpoint.status();
    endpoint_ = *std::move(endpoint);
    ASSERT_GT(endpoint_->port(), 0);
  }
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<MetricsEndpoint> endpoint_;
};

TEST_F(MetricsEndpointTest, ServesTheRegistryOnGetMetrics) {
  Start();
  std::string r = Exchange(endpoint_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  // The text format (prometheus-cpp names no version; Prometheus reads it as 0.0.4).
  EXPECT_THAT(r, HasSubstr("Content-Type: text/plain"));
  EXPECT_THAT(r, HasSubstr("\n# HELP hits_total Hits.\n# TYPE hits_total counter\n"
                           "hits_total 7\n"));
  EXPECT_THAT(Exchange(endpoint_->port(), "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"),
              StartsWith("HTTP/1.1 404"));
  endpoint_->Stop();
  endpoint_->Stop();  // idempotent
}

// A client that sends its request one byte at a time (slowloris) holds one worker until
// the request timeout, then is dropped; meanwhile other scrapes are answered at once.
TEST_F(MetricsEndpointTest, SlowClientIsDroppedAndDoesNotDelayScrapes) {
  MetricsEndpointOptions options;
  options.request_timeout = absl::Seconds(1);
  Start(options);
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: slow\r\n\r\n";  // 7 s at this pace
  const Clock::time_point start = Clock::now();
  int slow = Connect(endpoint_->port());
  double dropped_after_s = -1;
  std::thread slow_client([&] {
    for (char c : request) {
      if (send(slow, &c, 1, MSG_NOSIGNAL) != 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      char buf[256];
      ssize_t n = recv(slow, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
          (n > 0 && std::string(buf, static_cast<size_t>(n)).find("200 OK") == std::string::npos)) {
        dropped_after_s = std::chrono::duration<double>(Clock::now() - start).count();
        return;
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Clock::time_point scrape = Clock::now();
  EXPECT_THAT(Exchange(endpoint_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
              HasSubstr("hits_total 7\n"));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - scrape).count(), 0.5);
  slow_client.join();
  close(slow);
  ASSERT_GT(dropped_after_s, 0) << "the slow client was never dropped: its request got through";
  EXPECT_GT(dropped_after_s, 0.9) << "dropped before its timeout";
  EXPECT_LT(dropped_after_s, 2.5) << "a slow client was not dropped within its bound";
}

TEST(MetricsEndpointStartTest, RejectsBadAddressesAndBusyPorts) {
  auto registry = std::make_shared<prometheus::Registry>();
  EXPECT_EQ(MetricsEndpoint::Start("nonsense", {registry}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsEndpoint::Start("127.0.0.1:99999", {registry}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsEndpoint::Start("example.com:9464", {registry}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = MetricsEndpoint::Start("localhost:0", {registry});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsEndpoint::Start("127.0.0.1:" + std::to_string((*first)->port()), {registry});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST(CallbackGaugeTest, IsComputedAtEachScrapeAndAbsentWhileUnknown) {
  double value = 1.5;
  auto age = std::make_shared<CallbackGauge>("age_seconds", "Computed at scrape.",
                                             [&value] { return std::optional<double>(value); });
  auto absent = std::make_shared<CallbackGauge>(
      "absent", "No sample while unknown.", []() -> std::optional<double> { return std::nullopt; });
  EXPECT_THAT(ExposeText({age, absent}), HasSubstr("# TYPE age_seconds gauge\nage_seconds 1.5\n"));
  value = 42;
  const std::string page = ExposeText({age, absent});
  EXPECT_THAT(page, HasSubstr("age_seconds 42\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE absent gauge\n"));
  EXPECT_THAT(page, Not(HasSubstr("\nabsent ")));
}

}  // namespace
}  // namespace maplex::metrics

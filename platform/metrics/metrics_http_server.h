// A minimal HTTP/1.1 server for Prometheus scrapes: GET /metrics answers the registry's
// exposition; any other path is 404, any other method 405. One connection at a time, each
// closed after its response (scrapes are rare and small). POSIX sockets, one thread.
//
//   absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http =
//       MetricsHttpServer::Start("127.0.0.1:9464", &registry);
//   int port = (*http)->port();
//   (*http)->Stop();
#ifndef MAPLEX_PLATFORM_METRICS_METRICS_HTTP_SERVER_H_
#define MAPLEX_PLATFORM_METRICS_METRICS_HTTP_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "platform/metrics/metrics.h"

namespace maplex::metrics {

class MetricsHttpServer {
 public:
  // Listens on `address` ("HOST:PORT", an IPv4 address or "localhost"; port 0 picks one)
  // and serves `registry` (which must outlive the server). InvalidArgument for a
  // malformed address, Unavailable when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const MetricsRegistry* registry);
  ~MetricsHttpServer();  // Stop()s

  int port() const { return port_; }
  // Stops accepting, finishes the connection being served, joins. Idempotent.
  void Stop();

 private:
  MetricsHttpServer(int fd, int port, const MetricsRegistry* registry)
      : listen_fd_(fd), port_(port), registry_(registry) {}
  void Loop();
  void Serve(int connection) const;

  const int listen_fd_;
  const int port_;
  const MetricsRegistry* const registry_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace maplex::metrics

#endif  // MAPLEX_PLATFORM_METRICS_METRICS_HTTP_SERVER_H_

// Prometheus metrics through prometheus-cpp (Debian 12: prometheus-cpp-dev): callers keep
// their counters, gauges and histograms in a prometheus::Registry; this folder adds what
// prometheus-cpp lacks for maplex — an HTTP endpoint that bounds slow clients and reports
// errors as values, a gauge computed at each scrape, and the page as text for tests.
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   prometheus::BuildCounter().Name("hits_total").Help("Hits.").Register(*registry)
//       .Add({}).Increment();
//   absl::StatusOr<std::unique_ptr<MetricsEndpoint>> http =
//       MetricsEndpoint::Start("127.0.0.1:9464", {registry});
//   int port = (*http)->port();          // GET /metrics answers the text format 0.0.4
//
// Besides the collectables given, the page holds prometheus-cpp's own exposer_* series
// (scrapes, bytes, latencies). Stopping takes up to 2 s: civetweb's listener polls in
// 2 s quanta.
#ifndef MAPLEX_PLATFORM_METRICS_METRICS_ENDPOINT_H_
#define MAPLEX_PLATFORM_METRICS_METRICS_ENDPOINT_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace maplex::metrics {

using Collectables = std::vector<std::weak_ptr<prometheus::Collectable>>;

struct MetricsEndpointOptions {
  // A connection that has not sent a whole request by then is closed: a client sending
  // one byte a second holds a worker for at most this long (civetweb's request_timeout_ms,
  // which bounds the time since the request began, not the time between two reads).
  absl::Duration request_timeout = absl::Seconds(5);
  // Worker threads, so that up to threads - 1 slow clients do not delay a scrape.
  int threads = 4;
};

// GET /metrics over HTTP/1.1 (civetweb, via prometheus::Exposer).
class MetricsEndpoint {
 public:
  // Listens on `address` ("HOST:PORT", an IPv4 address or "localhost"; port 0 picks one)
  // and serves `collectables` (each kept alive by its owner; one that expired is skipped).
  // InvalidArgument for a malformed address, Unavailable when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address, const Collectables& collectables,
      const MetricsEndpointOptions& options = MetricsEndpointOptions());
  ~MetricsEndpoint();  // stops serving, closes every connection

  int port() const { return port_; }
  // Stops serving and closes every connection. Idempotent; not concurrent with itself.
  void Stop();

 private:
  MetricsEndpoint(std::unique_ptr<prometheus::Exposer> exposer, int port);
  std::unique_ptr<prometheus::Exposer> exposer_;
  const int port_;
};

// An unlabelled gauge whose value `read` computes at each scrape (e.g. an age); no sample
// is written while `read` returns nullopt. `read` runs on the endpoint's threads.
class CallbackGauge : public prometheus::Collectable {
 public:
  CallbackGauge(std::string name, std::string help, std::function<std::optional<double>()> read);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::string name_;
  const std::string help_;
  const std::function<std::optional<double>()> read_;
};

// What GET /metrics answers for `collectables`, in the text exposition format 0.0.4.
std::string ExposeText(const Collectables& collectables);

}  // namespace maplex::metrics

#endif  // MAPLEX_PLATFORM_METRICS_METRICS_ENDPOINT_H_

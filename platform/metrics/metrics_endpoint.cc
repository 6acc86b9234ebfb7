#include "platform/metrics/metrics_endpoint.h"

#include <exception>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace maplex::metrics {
namespace {

// "HOST:PORT" as civetweb's listening_ports wants it ("127.0.0.1:9464").
absl::StatusOr<std::string> ListeningPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" is not HOST:PORT with a port 0..65535"));
  }
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  int octets = 0;
  for (absl::string_view part : absl::StrSplit(host, '.')) {
    int v = -1;
    if (!absl::SimpleAtoi(part, &v) || v < 0 || v > 255) octets = -100;
    ++octets;
  }
  if (octets != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", address, "\": the host must be an IPv4 address or localhost"));
  }
  return absl::StrCat(host, ":", port);
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(std::unique_ptr<prometheus::Exposer> exposer, int port)
    : exposer_(std::move(exposer)), port_(port) {}

MetricsEndpoint::~MetricsEndpoint() = default;

void MetricsEndpoint::Stop() { exposer_.reset(); }

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, const Collectables& collectables,
    const MetricsEndpointOptions& options) {
  absl::StatusOr<std::string> listening = ListeningPort(address);
  if (!listening.ok()) return listening.status();
  const std::string timeout_ms = absl::StrCat(absl::ToInt64Milliseconds(options.request_timeout));
  std::unique_ptr<prometheus::Exposer> exposer;
  // prometheus-cpp reports a failed bind by throwing (civetweb's CivetException).
  try {
    exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", *listening, "num_threads", absl::StrCat(options.threads),
        "request_timeout_ms", timeout_ms,
        // Between two requests of one kept-alive connection, the same bound.
        "keep_alive_timeout_ms", timeout_ms, "enable_keep_alive", "no"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  for (const std::weak_ptr<prometheus::Collectable>& c : collectables) {
    exposer->RegisterCollectable(c);
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(absl::StrCat("no port bound for ", address));
  return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(exposer), ports[0]));
}

CallbackGauge::CallbackGauge(std::string name, std::string help,
                             std::function<std::optional<double>()> read)
    : name_(std::move(name)), help_(std::move(help)), read_(std::move(read)) {}

std::vector<prometheus::MetricFamily> CallbackGauge::Collect() const {
  prometheus::MetricFamily family;
  family.name = name_;
  family.help = help_;
  family.type = prometheus::MetricType::Gauge;
  if (std::optional<double> v = read_(); v.has_value()) {
    prometheus::ClientMetric m;
    m.gauge.value = *v;
    family.metric.push_back(std::move(m));
  }
  return {std::move(family)};
}

std::string ExposeText(const Collectables& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const std::weak_ptr<prometheus::Collectable>& weak : collectables) {
    if (std::shared_ptr<prometheus::Collectable> c = weak.lock()) {
      for (prometheus::MetricFamily& f : c->Collect()) families.push_back(std::move(f));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace maplex::metrics

#include "server/server_metrics.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace maplex::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// From 0.5 ms (a small Predict on loopback) to a minute (a retrain, a long stream).
const prometheus::Histogram::BucketBoundaries kRpcDurationBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

class RpcDurationInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcDurationInterceptor(prometheus::Family<prometheus::Histogram>* durations, std::string method)
      : durations_(durations),
        method_(std::move(method)),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
      std::string code = absl::StatusCodeToString(
          static_cast<absl::StatusCode>(methods->GetSendStatus().error_code()));
      durations_->Add({{"method", method_}, {"code", code}}, kRpcDurationBounds)
          .Observe(elapsed.count());
    }
    methods->Proceed();
  }

 private:
  prometheus::Family<prometheus::Histogram>* const durations_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
};

class RpcDurationInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcDurationInterceptorFactory(prometheus::Family<prometheus::Histogram>* durations)
      : durations_(durations) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcDurationInterceptor(durations_, info->method());
  }

 private:
  prometheus::Family<prometheus::Histogram>* const durations_;
};

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

ServerMetrics::ServerMetrics(const ModelSlot* slot)
    : registry_(std::make_shared<prometheus::Registry>()),
      model_age_(std::make_shared<metrics::CallbackGauge>(
          "maplex_model_age_seconds", "Seconds since the served model was trained.",
          [slot]() -> std::optional<double> {
            std::shared_ptr<const ServedModel> m = slot->Get();
            if (m == nullptr) return std::nullopt;
            return absl::ToDoubleSeconds(absl::Now() -
                                         absl::FromUnixMillis(m->info.created_at_unix_ms()));
          })),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("maplex_rpc_duration_seconds")
                        .Help("Time from an RPC's arrival to its status, by full method name "
                              "and status code; _count counts RPCs.")
                        .Register(*registry_)),
      measurements_stored_(prometheus::BuildCounter()
                               .Name("maplex_measurements_stored_total")
                               .Help("Measurements newly stored by Ingest (durably committed).")
                               .Register(*registry_)
                               .Add({})),
      measurements_replayed_(prometheus::BuildCounter()
                                 .Name("maplex_measurements_replayed_total")
                                 .Help("Measurements received again: their id was stored "
                                       "before, nothing was written.")
                                 .Register(*registry_)
                                 .Add({})),
      spool_depth_(GaugeFamily(
          *registry_, "maplex_agent_spool_depth",
          "Measurements waiting in an agent's spool, as reported with its last batch.")),
      model_version_(GaugeFamily(*registry_, "maplex_model_version",
                                 "Version of the model being served (0: none yet).")
                         .Add({})),
      device_samples_(
          GaugeFamily(*registry_, "maplex_model_device_samples",
                      "Measured samples of each device the served model was trained with.")),
      device_spearman_(GaugeFamily(
          *registry_, "maplex_model_device_cv_spearman",
          "Cross-validated Spearman rank correlation of the served method's predictions "
          "with a target device's held-out measurements (refit without them).")),
      device_acc10_(GaugeFamily(*registry_, "maplex_model_device_cv_acc10",
                                "Cross-validated share of a target device's held-out "
                                "measurements predicted within +-10 %.")),
      device_mape_(GaugeFamily(*registry_, "maplex_model_device_cv_mape_percent",
                               "Cross-validated mean absolute percentage error on a target "
                               "device's held-out measurements.")),
      device_scored_(GaugeFamily(
          *registry_, "maplex_model_device_cv_scored",
          "Held-out measurements a target device's cross-validated figures come from.")) {}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServerMetrics::RpcInterceptorFactory() {
  return std::make_unique<RpcDurationInterceptorFactory>(&rpc_duration_);
}

void ServerMetrics::OnMeasurementsStored(int inserted, int already_stored) {
  measurements_stored_.Increment(inserted);
  measurements_replayed_.Increment(already_stored);
}

void ServerMetrics::OnSpoolDepthReported(const std::string& device_id, int64_t depth) {
  spool_depth_.Add({{"device", device_id}}).Set(static_cast<double>(depth));
}

void ServerMetrics::OnModelServed(const v1::ModelInfo& info) {
  std::lock_guard<std::mutex> lock(model_mu_);
  model_version_.Set(static_cast<double>(info.version()));
  // Set the new version's series first and remove the ones it no longer has afterwards, so
  // a concurrent scrape never sees a kept device without its series.
  std::vector<std::pair<prometheus::Family<prometheus::Gauge>*, prometheus::Gauge*>> current;
  for (const v1::DeviceAccuracy& a : info.device_accuracy()) {
    auto set = [&](prometheus::Family<prometheus::Gauge>& family, double value) {
      // NB201's series keep their one label; another space's carry it too, so that a
      // device known in two spaces has one series per space.
      std::map<std::string, std::string> labels = {{"device", a.device_id()}};
      if (!a.space().empty() && a.space() != "nb201") labels["space"] = a.space();
      prometheus::Gauge& g = family.Add(labels);  // existing or new
      g.Set(value);
      current.emplace_back(&family, &g);
    };
    set(device_samples_, static_cast<double>(a.samples()));
    // An unscored device (a reference, too few samples) gets no cv_* series rather than a
    // 0 that would read as a terrible score.
    if (a.scored() == 0) continue;
    set(device_spearman_, a.spearman());
    set(device_acc10_, a.acc10());
    set(device_mape_, a.mape());
    set(device_scored_, static_cast<double>(a.scored()));
  }
  for (const auto& [family, gauge] : device_gauges_) {
    if (std::find(current.begin(), current.end(), std::make_pair(family, gauge)) == current.end()) {
      family->Remove(gauge);
    }
  }
  device_gauges_ = std::move(current);
}

}  // namespace maplex::server

#include "server/server_metrics.h"

#include <chrono>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace maplex::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// From 0.5 ms (a small Predict on loopback) to a minute (a retrain, a long stream).
const std::vector<double> kRpcDurationBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

class RpcDurationInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcDurationInterceptor(metrics::HistogramFamily* durations, std::string method)
      : durations_(durations),
        method_(std::move(method)),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
      std::string code = absl::StatusCodeToString(
          static_cast<absl::StatusCode>(methods->GetSendStatus().error_code()));
      durations_->WithLabels({method_, code}).Observe(elapsed.count());
    }
    methods->Proceed();
  }

 private:
  metrics::HistogramFamily* const durations_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
};

class RpcDurationInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcDurationInterceptorFactory(metrics::HistogramFamily* durations)
      : durations_(durations) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcDurationInterceptor(durations_, info->method());
  }

 private:
  metrics::HistogramFamily* const durations_;
};

}  // namespace

ServerMetrics::ServerMetrics(const ModelSlot* slot)
    : rpc_duration_(registry_.AddHistogram(
          "maplex_rpc_duration_seconds",
          "Time from an RPC's arrival to its status, by full method name and status code; "
          "_count counts RPCs.",
          {"method", "code"}, kRpcDurationBounds)),
      measurements_stored_(
          registry_
              .AddCounter("maplex_measurements_stored_total",
                          "Measurements newly stored by Ingest (durably committed).", {})
              .WithLabels({})),
      measurements_replayed_(registry_
                                 .AddCounter("maplex_measurements_replayed_total",
                                             "Measurements received again: their id was "
                                             "stored before, nothing was written.",
                                             {})
                                 .WithLabels({})),
      spool_depth_(registry_.AddGauge(
          "maplex_agent_spool_depth",
          "Measurements waiting in an agent's spool, as reported with its last batch.",
          {"device"})),
      model_version_(registry_
                         .AddGauge("maplex_model_version",
                                   "Version of the model being served (0: none yet).", {})
                         .WithLabels({})),
      device_samples_(registry_.AddGauge(
          "maplex_model_device_samples",
          "Measured samples of each device the served model was trained with.", {"device"})),
      device_spearman_(registry_.AddGauge(
          "maplex_model_device_in_sample_spearman",
          "Spearman rank correlation of the served model's predictions with the device's "
          "training samples (in-sample: optimistic for devices with few samples).",
          {"device"})),
      device_acc10_(registry_.AddGauge(
          "maplex_model_device_in_sample_acc10",
          "Share of the device's training samples predicted within +-10 % (in-sample).",
          {"device"})),
      device_mape_(registry_.AddGauge(
          "maplex_model_device_in_sample_mape_percent",
          "Mean absolute percentage error on the device's training samples (in-sample).",
          {"device"})) {
  registry_.AddCallbackGauge(
      "maplex_model_age_seconds", "Seconds since the served model was trained.",
      [slot]() -> std::optional<double> {
        std::shared_ptr<const ServedModel> m = slot->Get();
        if (m == nullptr) return std::nullopt;
        return absl::ToDoubleSeconds(absl::Now() -
                                     absl::FromUnixMillis(m->info.created_at_unix_ms()));
      });
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServerMetrics::RpcInterceptorFactory() {
  return std::make_unique<RpcDurationInterceptorFactory>(&rpc_duration_);
}

void ServerMetrics::OnMeasurementsStored(int inserted, int already_stored) {
  measurements_stored_.Increment(static_cast<uint64_t>(inserted));
  measurements_replayed_.Increment(static_cast<uint64_t>(already_stored));
}

void ServerMetrics::OnSpoolDepthReported(const std::string& device_id, int64_t depth) {
  spool_depth_.WithLabels({device_id}).Set(static_cast<double>(depth));
}

void ServerMetrics::OnModelServed(const v1::ModelInfo& info) {
  model_version_.Set(static_cast<double>(info.version()));
  std::vector<metrics::LabelValues> devices;
  for (const v1::DeviceAccuracy& a : info.device_accuracy()) {
    devices.push_back({a.device_id()});
    device_samples_.WithLabels({a.device_id()}).Set(static_cast<double>(a.samples()));
    device_spearman_.WithLabels({a.device_id()}).Set(a.spearman());
    device_acc10_.WithLabels({a.device_id()}).Set(a.acc10());
    device_mape_.WithLabels({a.device_id()}).Set(a.mape());
  }
  for (metrics::GaugeFamily* f :
       {&device_samples_, &device_spearman_, &device_acc10_, &device_mape_}) {
    f->RetainOnly(devices);
  }
}

}  // namespace maplex::server

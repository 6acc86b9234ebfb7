// The server's Prometheus metrics, served on GET /metrics (ServerOptions.metrics_listen).
// Names and meanings (README.md lists them for operators):
//
//   maplex_rpc_duration_seconds{method,code}   histogram of every RPC, from arrival to its
//                                              status; _count is the RPC count
//   maplex_measurements_stored_total           measurements newly stored (ingest rate:
//                                              rate() of it)
//   maplex_measurements_replayed_total         measurements received again (ids stored before)
//   maplex_agent_spool_depth{device}           measurements waiting in the agent's spool, as
//                                              reported with its last batch
//   maplex_model_version                       version of the served model
//   maplex_model_age_seconds                   seconds since the served model was trained
//   maplex_model_device_samples{device}        measured samples each device had in training
//   maplex_model_device_in_sample_spearman{device}   accuracy of the served model on the
//   maplex_model_device_in_sample_acc10{device}      samples it was fit on (the trainer's
//   maplex_model_device_in_sample_mape_percent{device}  "in-sample" basis; optimistic for
//                                                    devices with few samples)
//
//   ServerMetrics metrics(&slot);
//   builder.experimental().SetInterceptorCreators(metrics.InterceptorFactories());
//   metrics.OnModelServed(model_info);   // each new version
#ifndef MAPLEX_SERVER_SERVER_METRICS_H_
#define MAPLEX_SERVER_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "maplex/v1/models.pb.h"
#include "platform/metrics/metrics.h"
#include "server/model_slot.h"

namespace maplex::server {

class ServerMetrics {
 public:
  // `slot` (which must outlive this) is read at each scrape for the model's age.
  explicit ServerMetrics(const ModelSlot* slot);

  const metrics::MetricsRegistry& registry() const { return registry_; }

  // A factory of interceptors that time every RPC into maplex_rpc_duration_seconds.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcInterceptorFactory();

  void OnMeasurementsStored(int inserted, int already_stored);
  void OnSpoolDepthReported(const std::string& device_id, int64_t depth);
  // Sets the model gauges from a newly served version; devices it no longer has are dropped.
  void OnModelServed(const maplex::v1::ModelInfo& info);

 private:
  metrics::MetricsRegistry registry_;
  metrics::HistogramFamily& rpc_duration_;
  metrics::Counter& measurements_stored_;
  metrics::Counter& measurements_replayed_;
  metrics::GaugeFamily& spool_depth_;
  metrics::Gauge& model_version_;
  metrics::GaugeFamily& device_samples_;
  metrics::GaugeFamily& device_spearman_;
  metrics::GaugeFamily& device_acc10_;
  metrics::GaugeFamily& device_mape_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVER_METRICS_H_

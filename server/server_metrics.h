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
//   maplex_model_device_cv_spearman{device}    cross-validated accuracy of each target
//   maplex_model_device_cv_acc10{device}       device (ModelInfo.device_accuracy: held-out
//   maplex_model_device_cv_mape_percent{device}  measurements predicted by refits without
//   maplex_model_device_cv_scored{device}      them; _scored counts them). Reference devices
//                                              and devices with < 3 samples are not scored
//                                              and have no cv_* series.
//
//   ServerMetrics metrics(&slot);
//   builder.experimental().SetInterceptorCreators(metrics.InterceptorFactories());
//   metrics.OnModelServed(model_info);   // each new version
#ifndef MAPLEX_SERVER_SERVER_METRICS_H_
#define MAPLEX_SERVER_SERVER_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "maplex/v1/models.pb.h"
#include "platform/metrics/metrics_endpoint.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/model_slot.h"

namespace maplex::server {

class ServerMetrics {
 public:
  // `slot` (which must outlive this) is read at each scrape for the model's age.
  explicit ServerMetrics(const ModelSlot* slot);

  // What the metrics endpoint serves (valid while this lives).
  metrics::Collectables collectables() const { return {registry_, model_age_}; }
  // The page a scrape gets now.
  std::string Expose() const { return metrics::ExposeText(collectables()); }

  // A factory of interceptors that time every RPC into maplex_rpc_duration_seconds.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcInterceptorFactory();

  void OnMeasurementsStored(int inserted, int already_stored);
  void OnSpoolDepthReported(const std::string& device_id, int64_t depth);
  // Sets the model gauges from a newly served version; devices it no longer has are dropped.
  void OnModelServed(const maplex::v1::ModelInfo& info);

 private:
  const std::shared_ptr<prometheus::Registry> registry_;
  const std::shared_ptr<metrics::CallbackGauge> model_age_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Counter& measurements_stored_;
  prometheus::Counter& measurements_replayed_;
  prometheus::Family<prometheus::Gauge>& spool_depth_;
  prometheus::Gauge& model_version_;
  prometheus::Family<prometheus::Gauge>& device_samples_;
  prometheus::Family<prometheus::Gauge>& device_spearman_;
  prometheus::Family<prometheus::Gauge>& device_acc10_;
  prometheus::Family<prometheus::Gauge>& device_mape_;
  prometheus::Family<prometheus::Gauge>& device_scored_;

  std::mutex model_mu_;  // one OnModelServed at a time
  // The per-device series of the served model, to remove those of devices it dropped.
  std::vector<std::pair<prometheus::Family<prometheus::Gauge>*, prometheus::Gauge*>> device_gauges_
      ABSL_GUARDED_BY(model_mu_);
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVER_METRICS_H_

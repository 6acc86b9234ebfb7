// maplex-server as a library: the store, the trainer, the gRPC services, health and
// reflection, started and stopped as one unit. main.cc only fills ServerOptions.
//
// A replica (options.replica_of set) has no store and no trainer: it follows the primary's
// Models.WatchModels stream (server/model_follower.h) and serves Predictor, the Models
// reads of the version it serves, health and reflection. It is NOT_SERVING until the
// first model arrived, and again while it has not heard its primary for longer than
// follower.max_staleness. With AuthMode::kToken it checks callers against the digests of
// the primary's tokens (server/token_follower.h), reaching the primary with a replica token.
//
//   ServerOptions options;
//   options.listen_address = "127.0.0.1:0";
//   options.database_path = "/tmp/maplex.db";
//   absl::StatusOr<std::unique_ptr<MaplexServer>> server = MaplexServer::Start(options);
//   int port = (*server)->port();
//   ...
//   (*server)->Shutdown();   // NOT_SERVING, drain, stop trainer, checkpoint WAL
#ifndef MAPLEX_SERVER_SERVER_H_
#define MAPLEX_SERVER_SERVER_H_

#include <grpcpp/server.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "platform/metrics/metrics_endpoint.h"
#include "server/auth/authorizer.h"
#include "server/auth/token_registry.h"
#include "server/limits.h"
#include "server/model_follower.h"
#include "server/model_slot.h"
#include "server/server_metrics.h"
#include "server/services/ingest_service.h"
#include "server/services/models_service.h"
#include "server/services/predictor_service.h"
#include "server/services/registry_service.h"
#include "server/services/retired_devices.h"
#include "server/services/tokens_service.h"
#include "server/store/store.h"
#include "server/token_follower.h"
#include "server/trainer.h"

namespace maplex::server {

struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";
  std::string database_path = "maplex.db";  // unused by a replica
  // Address of the primary to follow; empty = this server is the primary.
  std::string replica_of;
  FollowerOptions follower;
  // In-flight calls get this long to finish at shutdown before they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Prometheus /metrics over HTTP ("127.0.0.1:9464"; port 0 picks one); empty = none.
  std::string metrics_listen;
  TrainerOptions trainer;
  Limits limits;
  int max_message_bytes = 64 << 20;
  // No call outlives this (about 5 % more with gRPC's jitter), and every call gets at least
  // half of it: a connection is asked to go away after half and closed after the other half
  // (gRPC's maximum connection age). Bounds a stream a client never ends; clients open a
  // new connection by themselves, and long-lived watchers re-subscribe.
  absl::Duration max_call_duration = absl::Hours(1);
  // Server-wide bounds on in-flight calls (grpc::ResourceQuota). Threads: the synchronous
  // server runs each call's handler on a thread of its own, so without a bound a flood of
  // slow calls (streams held open) grows one thread per call. With it, a call that finds
  // every thread taken is refused at once with RESOURCE_EXHAUSTED (and retried by the
  // clients' backoff) while the calls in flight go on. Memory: what gRPC may hold in
  // buffers for calls and connections; under pressure it shrinks them before refusing.
  // Each must be above what one call needs (gRPC's pollers take a few threads).
  int max_threads = 256;
  int64_t max_call_memory_bytes = int64_t{1} << 30;

  // --- security: docs/RELIABILITY.md, "Roles and authentication", "Transport security" ---
  AuthMode auth = AuthMode::kNone;
  // AuthMode::kToken: where the first operator token's secret is written when no operator
  // token is active (server/auth/bootstrap_token.h).
  std::string bootstrap_token_file;
  // AuthMode::kToken: a file (a mounted Kubernetes Secret) whose first line is an operator
  // token's secret, registered at start unless known (RegisterOperatorSecretFile).
  std::string operator_token_file;
  // Without tokens only a loopback address (server/listen_address.h) is served unless this
  // is set: being open to the network is never silent. Client certificates do not replace
  // tokens: they give no role, so without tokens every certificate holder is an operator.
  bool allow_unauthenticated_non_loopback = false;
  // TLS when tls_cert_file is set (PEM files). With tls_client_ca_file, every client must
  // present a certificate that CA signed (mTLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

class MaplexServer {
 public:
  // Primary: opens the store, loads the newest model (or trains one if there is data but no
  // model), and starts serving. Fails without serving if the database cannot be opened.
  // Replica: starts following the primary and serving; never fails for an absent primary.
  static absl::StatusOr<std::unique_ptr<MaplexServer>> Start(const ServerOptions& options);

  ~MaplexServer();  // Shutdown()s

  // The port actually bound (useful with port 0).
  int port() const { return port_; }
  // The port of /metrics, 0 when metrics_listen is empty.
  int metrics_port() const { return metrics_http_ == nullptr ? 0 : metrics_http_->port(); }

  // The Predictor service itself, to time its handler without the transport (bench/).
  const PredictorService& predictor() const { return *predictor_; }

  // Graceful stop: health NOT_SERVING, no new calls, in-flight calls drain for up to
  // shutdown_grace, trainer stopped, WAL checkpointed. Idempotent.
  void Shutdown();

  // Blocks until Shutdown() has finished.
  void Wait();

  // Direct access for in-process tests (trainer: primary only).
  Trainer& trainer() { return *trainer_; }
  const ModelSlot& model_slot() const { return slot_; }
  const ServerMetrics& metrics() const { return metrics_; }

 private:
  explicit MaplexServer(const ServerOptions& options) : options_(options) {}
  void WatchReadiness();
  absl::Status OpenPrimaryState();

  const ServerOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<TokenRegistry> tokens_;
  std::unique_ptr<Authorizer> authorizer_;
  ModelSlot slot_;
  ServerMetrics metrics_{&slot_};
  std::unique_ptr<metrics::MetricsEndpoint> metrics_http_;
  RetiredDevices retired_;
  std::unique_ptr<Trainer> trainer_;          // primary only
  std::unique_ptr<ModelFollower> follower_;  // replica only
  std::unique_ptr<TokenFollower> token_follower_;  // replica with tokens only
  std::unique_ptr<RegistryService> registry_;
  std::unique_ptr<IngestService> ingest_;
  std::unique_ptr<PredictorService> predictor_;
  std::unique_ptr<ModelsService> models_;
  std::unique_ptr<TokensService> tokens_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  std::thread readiness_thread_;
  std::atomic<bool> stopping_{false};
  std::mutex shutdown_mu_;
  std::condition_variable stopped_cv_;
  bool stopped_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVER_H_

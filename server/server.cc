#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/log.h"

namespace maplex::server {
namespace {

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:");
}

}  // namespace

absl::Status MaplexServer::OpenPrimaryState() {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options_.database_path);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  LogInfo("store_opened", {{"path", options_.database_path},
                           {"schema_from", absl::StrCat(store_->opened_schema_version())},
                           {"schema", absl::StrCat(Store::kSchemaVersion)}});

  DeviceFilter retired_filter;
  retired_filter.include_retired = true;
  absl::StatusOr<std::vector<v1::Device>> all =
      store_->ListDevices(retired_filter, "", std::numeric_limits<int>::max());
  if (!all.ok()) return all.status();
  for (const v1::Device& d : *all) {
    if (d.retired()) retired_.Add(d.id());
  }

  trainer_ = std::make_unique<Trainer>(store_.get(), &slot_, options_.trainer);
  if (absl::Status s = trainer_->LoadLatest(); !s.ok()) {
    // The data is intact; a model that no longer loads is retrained from it.
    LogWarning("stored_model_unusable", {{"error", s.ToString()}});
  }
  if (slot_.Get() == nullptr) trainer_->NotifyNewData();
  trainer_->Start();

  registry_ = std::make_unique<RegistryService>(store_.get(), &retired_, trainer_.get(),
                                                options_.limits);
  ingest_ = std::make_unique<IngestService>(store_.get(), trainer_.get(), &slot_, &metrics_,
                                            options_.limits);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MaplexServer>> MaplexServer::Start(const ServerOptions& options) {
  std::unique_ptr<MaplexServer> server(new MaplexServer(options));
  const bool replica = !options.replica_of.empty();
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsHttpServer>> http =
        metrics::MetricsHttpServer::Start(options.metrics_listen, &server->metrics_.registry());
    if (!http.ok()) return http.status();
    server->metrics_http_ = *std::move(http);
    LogInfo("metrics_listening", {{"address", options.metrics_listen},
                                  {"port", absl::StrCat(server->metrics_http_->port())}});
  }
  if (replica) {
    server->follower_ =
        std::make_unique<ModelFollower>(options.replica_of, &server->slot_, options.follower);
    server->follower_->Start();
  } else if (absl::Status s = server->OpenPrimaryState(); !s.ok()) {
    return s;
  }
  server->predictor_ = std::make_unique<PredictorService>(&server->slot_, &server->retired_,
                                                          server->store_.get(), options.limits);
  server->models_ = std::make_unique<ModelsService>(server->store_.get(), &server->slot_,
                                                    server->trainer_.get(), options.replica_of);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Security (tokens, TLS) is not configured yet: only a loopback address is safe.
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server->metrics_.RpcInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (!replica) {
    builder.RegisterService(server->registry_.get());
    builder.RegisterService(server->ingest_.get());
  }
  builder.RegisterService(server->predictor_.get());
  builder.RegisterService(server->models_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    if (server->trainer_ != nullptr) server->trainer_->Stop();
    if (server->follower_ != nullptr) server->follower_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (in use or not local?)"));
  }
  if (!IsLoopback(options.listen_address)) {
    LogWarning("insecure_listen", {{"address", options.listen_address},
                                   {"why", "no authentication or TLS is configured"}});
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus("maplex.v1.Predictor", false);
  // Models answers now (a replica: for the version it serves, once it has one); the
  // primary's store is open, so registry and ingest serve too. Predictor and overall
  // readiness wait for a model.
  health->SetServingStatus("maplex.v1.Models", true);
  if (!replica) {
    health->SetServingStatus("maplex.v1.DeviceRegistry", true);
    health->SetServingStatus("maplex.v1.Ingest", true);
  }
  server->readiness_thread_ = std::thread([raw = server.get()] { raw->WatchReadiness(); });
  LogInfo("server_started", {{"address", options.listen_address},
                             {"port", absl::StrCat(server->port_)},
                             {"role", replica ? "replica" : "primary"},
                             {"primary", options.replica_of}});
  return server;
}

void MaplexServer::WatchReadiness() {
  uint64_t seen = 0;
  while (!stopping_.HasBeenNotified()) {
    std::shared_ptr<const ServedModel> m = slot_.WaitNewer(seen, absl::Milliseconds(200));
    if (m == nullptr || m->info.version() <= seen || stopping_.HasBeenNotified()) continue;
    metrics_.OnModelServed(m->info);
    if (seen == 0) {
      grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
      health->SetServingStatus("maplex.v1.Predictor", true);
      health->SetServingStatus(true);
      LogInfo("ready", {{"model_version", absl::StrCat(m->info.version())}});
    }
    seen = m->info.version();
  }
}

void MaplexServer::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);
  if (stopped_.HasBeenNotified()) return;
  LogInfo("shutdown_started", {{"grace_seconds",
                                absl::StrCat(absl::ToDoubleSeconds(options_.shutdown_grace))}});
  stopping_.Notify();
  if (readiness_thread_.joinable()) readiness_thread_.join();
  if (grpc_server_ != nullptr) {
    // Shutdown() of the health service sets every service NOT_SERVING and keeps it so.
    grpc_server_->GetHealthCheckService()->Shutdown();
    models_->StopWatches();
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoMilliseconds(options_.shutdown_grace));
  }
  if (trainer_ != nullptr) trainer_->Stop();
  if (follower_ != nullptr) follower_->Stop();
  store_.reset();  // checkpoints the WAL (primary)
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  LogInfo("shutdown_finished");
  stopped_.Notify();
}

void MaplexServer::Wait() { stopped_.WaitForNotification(); }

MaplexServer::~MaplexServer() { Shutdown(); }

}  // namespace maplex::server

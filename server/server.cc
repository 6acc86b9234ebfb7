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

constexpr const char* kServices[] = {"maplex.v1.DeviceRegistry", "maplex.v1.Ingest",
                                     "maplex.v1.Predictor", "maplex.v1.Models"};

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:");
}

}  // namespace

absl::StatusOr<std::unique_ptr<MaplexServer>> MaplexServer::Start(const ServerOptions& options) {
  std::unique_ptr<MaplexServer> server(new MaplexServer(options));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options.database_path);
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  LogInfo("store_opened", {{"path", options.database_path},
                           {"schema_from", absl::StrCat(server->store_->opened_schema_version())},
                           {"schema", absl::StrCat(Store::kSchemaVersion)}});

  DeviceFilter retired_filter;
  retired_filter.include_retired = true;
  absl::StatusOr<std::vector<v1::Device>> all =
      server->store_->ListDevices(retired_filter, "", std::numeric_limits<int>::max());
  if (!all.ok()) return all.status();
  for (const v1::Device& d : *all) {
    if (d.retired()) server->retired_.Add(d.id());
  }

  server->trainer_ =
      std::make_unique<Trainer>(server->store_.get(), &server->slot_, options.trainer);
  if (absl::Status s = server->trainer_->LoadLatest(); !s.ok()) {
    // The data is intact; a model that no longer loads is retrained from it.
    LogWarning("stored_model_unusable", {{"error", s.ToString()}});
  }
  if (server->slot_.Get() == nullptr) server->trainer_->NotifyNewData();
  server->trainer_->Start();

  const Limits& limits = options.limits;
  Store* s = server->store_.get();
  server->registry_ =
      std::make_unique<RegistryService>(s, &server->retired_, server->trainer_.get(), limits);
  server->ingest_ =
      std::make_unique<IngestService>(s, server->trainer_.get(), &server->slot_, limits);
  server->predictor_ =
      std::make_unique<PredictorService>(&server->slot_, &server->retired_, s, limits);
  server->models_ = std::make_unique<ModelsService>(s, &server->slot_, server->trainer_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Security (tokens, TLS) is not configured yet: only a loopback address is safe.
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(server->registry_.get());
  builder.RegisterService(server->ingest_.get());
  builder.RegisterService(server->predictor_.get());
  builder.RegisterService(server->models_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->trainer_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (in use or not local?)"));
  }
  if (!IsLoopback(options.listen_address)) {
    LogWarning("insecure_listen", {{"address", options.listen_address},
                                   {"why", "no authentication or TLS is configured"}});
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(false);
  for (const char* name : kServices) health->SetServingStatus(name, false);
  // The store is open: registry, ingest and models serve now; Predictor and overall
  // readiness wait for a model.
  health->SetServingStatus("maplex.v1.DeviceRegistry", true);
  health->SetServingStatus("maplex.v1.Ingest", true);
  health->SetServingStatus("maplex.v1.Models", true);
  server->readiness_thread_ = std::thread([raw = server.get()] { raw->WatchReadiness(); });
  LogInfo("server_started", {{"address", options.listen_address},
                             {"port", absl::StrCat(server->port_)}});
  return server;
}

void MaplexServer::WatchReadiness() {
  uint64_t seen = 0;
  while (!stopping_.HasBeenNotified()) {
    std::shared_ptr<const ServedModel> m = slot_.WaitNewer(seen, absl::Milliseconds(200));
    if (m == nullptr || m->info.version() <= seen || stopping_.HasBeenNotified()) continue;
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
  store_.reset();  // checkpoints the WAL
  LogInfo("shutdown_finished");
  stopped_.Notify();
}

void MaplexServer::Wait() { stopped_.WaitForNotification(); }

MaplexServer::~MaplexServer() { Shutdown(); }

}  // namespace maplex::server

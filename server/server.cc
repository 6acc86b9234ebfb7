#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "platform/log.h"
#include "server/auth/bootstrap_token.h"

namespace maplex::server {
namespace {

constexpr const char* kServices[] = {"maplex.v1.DeviceRegistry", "maplex.v1.Ingest",
                                     "maplex.v1.Predictor", "maplex.v1.Models",
                                     "maplex.v1.Tokens"};

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "localhost:") ||
         absl::StartsWith(address, "[::1]:");
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  return text.str();
}

// The listening credentials, after checking the combination of options is one we serve:
// no unauthenticated non-loopback address unless asked for, TLS files in pairs.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListeningCredentials(
    const ServerOptions& options) {
  bool verifies_callers =
      options.auth == AuthMode::kToken || !options.tls_client_ca_file.empty();
  if (!verifies_callers && !IsLoopback(options.listen_address) &&
      !options.allow_unauthenticated_non_loopback) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", options.listen_address,
        " without authentication: use --auth=token (or client certificates, "
        "--tls_client_ca), listen on 127.0.0.1, or pass --insecure_allow_unauthenticated"));
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (options.tls_cert_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPemFile(options.tls_cert_file, "--tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(options.tls_key_file, "--tls_key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile(options.tls_client_ca_file, "--tls_client_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MaplexServer>> MaplexServer::Start(const ServerOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ListeningCredentials(options);
  if (!credentials.ok()) return credentials.status();
  if (options.limits.agent_measurement_burst < options.limits.max_measurements_per_batch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limits: the agent burst (", options.limits.agent_measurement_burst,
        ") must hold one maximal batch (", options.limits.max_measurements_per_batch, ")"));
  }
  std::unique_ptr<MaplexServer> server(new MaplexServer(options));
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options.database_path);
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  LogInfo("store_opened", {{"path", options.database_path},
                           {"schema_from", absl::StrCat(server->store_->opened_schema_version())},
                           {"schema", absl::StrCat(Store::kSchemaVersion)}});

  absl::StatusOr<std::unique_ptr<TokenRegistry>> tokens = TokenRegistry::Load(server->store_.get());
  if (!tokens.ok()) return tokens.status();
  server->tokens_ = *std::move(tokens);
  if (options.auth == AuthMode::kToken) {
    absl::Status s = BootstrapOperatorToken(*server->tokens_, options.bootstrap_token_file);
    if (!s.ok()) return s;
  }
  server->authorizer_ = std::make_unique<Authorizer>(options.auth, server->tokens_.get());

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
  const Authorizer* auth = server->authorizer_.get();
  server->registry_ = std::make_unique<RegistryService>(auth, s, &server->retired_,
                                                        server->trainer_.get(), limits);
  server->ingest_ =
      std::make_unique<IngestService>(auth, s, server->trainer_.get(), &server->slot_, limits);
  server->predictor_ =
      std::make_unique<PredictorService>(auth, &server->slot_, &server->retired_, s, limits);
  server->models_ =
      std::make_unique<ModelsService>(auth, s, &server->slot_, server->trainer_.get());
  server->tokens_service_ =
      std::make_unique<TokensService>(server->tokens_.get(), auth, limits);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, *credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(server->registry_.get());
  builder.RegisterService(server->ingest_.get());
  builder.RegisterService(server->predictor_.get());
  builder.RegisterService(server->models_.get());
  builder.RegisterService(server->tokens_service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->trainer_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (in use or not local?)"));
  }
  if (!IsLoopback(options.listen_address) && options.tls_cert_file.empty()) {
    LogWarning("plaintext_listen", {{"address", options.listen_address},
                                    {"why", options.auth == AuthMode::kToken
                                                ? "tokens cross the network unencrypted"
                                                : "no authentication and no TLS"}});
  }
  grpc::HealthCheckServiceInterface* health = server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(false);
  for (const char* name : kServices) health->SetServingStatus(name, false);
  // The store is open: registry, ingest and models serve now; Predictor and overall
  // readiness wait for a model.
  health->SetServingStatus("maplex.v1.DeviceRegistry", true);
  health->SetServingStatus("maplex.v1.Ingest", true);
  health->SetServingStatus("maplex.v1.Models", true);
  health->SetServingStatus("maplex.v1.Tokens", true);
  server->readiness_thread_ = std::thread([raw = server.get()] { raw->WatchReadiness(); });
  LogInfo("server_started", {{"address", options.listen_address},
                             {"port", absl::StrCat(server->port_)},
                             {"auth", options.auth == AuthMode::kToken ? "token" : "none"},
                             {"tls", options.tls_cert_file.empty() ? "off"
                                     : options.tls_client_ca_file.empty() ? "on" : "mtls"}});
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

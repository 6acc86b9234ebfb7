#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "platform/grpc_channel.h"
#include "platform/log.h"
#include "server/auth/bootstrap_token.h"
#include "server/listen_address.h"
#include "server/token_follower.h"

namespace maplex::server {
namespace {

// The listening credentials, after checking the combination of options is one we serve:
// no unauthenticated non-loopback address unless asked for, TLS files in pairs.
//
// Client certificates alone do not count as authentication: a certificate says who the
// caller is, but maplex has no mapping from a certificate to a role or a device, so every
// holder would be an operator acting for any device. Tokens carry the role (and an agent's
// device); mTLS adds a transport check in front of them.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListeningCredentials(
    const ServerOptions& options) {
  if (options.auth != AuthMode::kToken && !IsLoopbackAddress(options.listen_address) &&
      !options.allow_unauthenticated_non_loopback) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", options.listen_address,
        " without authentication: use --auth=token (client certificates, --tls_client_ca, "
        "check the transport but give no role, so they need tokens too), listen on "
        "127.0.0.1, or pass --insecure_allow_unauthenticated"));
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
  absl::StatusOr<std::string> cert = ReadCredentialFile(options.tls_cert_file, "--tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadCredentialFile(options.tls_key_file, "--tls_key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadCredentialFile(options.tls_client_ca_file, "--tls_client_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::Status MaplexServer::OpenPrimaryState() {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options_.database_path);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  LogInfo("store_opened", {{"path", options_.database_path},
                           {"schema_from", absl::StrCat(store_->opened_schema_version())},
                           {"schema", absl::StrCat(Store::kSchemaVersion)}});

  absl::StatusOr<std::unique_ptr<TokenRegistry>> tokens = TokenRegistry::Load(store_.get());
  if (!tokens.ok()) return tokens.status();
  tokens_ = *std::move(tokens);
  if (options_.auth == AuthMode::kToken && !options_.operator_token_file.empty()) {
    // Before the bootstrap: an operator token from a Secret makes a bootstrap file needless.
    if (absl::Status s = RegisterOperatorSecretFile(*tokens_, options_.operator_token_file);
        !s.ok()) {
      return s;
    }
  }
  if (options_.auth == AuthMode::kToken) {
    absl::Status s = BootstrapOperatorToken(*tokens_, options_.bootstrap_token_file);
    if (!s.ok()) return s;
  }
  authorizer_ = std::make_unique<Authorizer>(options_.auth, tokens_.get());

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

  registry_ = std::make_unique<RegistryService>(authorizer_.get(), store_.get(), &retired_,
                                                trainer_.get(), options_.limits);
  ingest_ = std::make_unique<IngestService>(authorizer_.get(), store_.get(), trainer_.get(),
                                            &slot_, &metrics_, options_.limits);
  tokens_service_ =
      std::make_unique<TokensService>(tokens_.get(), authorizer_.get(), options_.limits);
  return absl::OkStatus();
}

namespace {
constexpr int kMinThreads = 4;
constexpr int64_t kMinCallMemoryBytes = int64_t{16} << 20;
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
  // gRPC's synchronous server takes threads from the quota for its pollers before any
  // handler runs, and each call's buffers need some memory: below these it serves nothing.
  if (options.max_threads < kMinThreads) {
    return absl::InvalidArgumentError(absl::StrCat("max_threads: ", options.max_threads,
                                                   " is below the minimum of ", kMinThreads));
  }
  if (options.max_call_memory_bytes < kMinCallMemoryBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_call_memory: ", options.max_call_memory_bytes >> 20,
                     " MiB is below the minimum of ", kMinCallMemoryBytes >> 20, " MiB"));
  }
  const bool replica = !options.replica_of.empty();
  if (replica && options.auth == AuthMode::kToken && options.follower.primary.token.empty()) {
    return absl::InvalidArgumentError(
        "a replica with --auth=token checks tokens against its primary's: give it a replica "
        "token of the primary (--primary_token_file; maplex tokens create --role replica)");
  }
  std::unique_ptr<MaplexServer> server(new MaplexServer(options));
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsEndpoint>> http =
        metrics::MetricsEndpoint::Start(options.metrics_listen, server->metrics_.collectables());
    if (!http.ok()) return http.status();
    server->metrics_http_ = *std::move(http);
    LogInfo("metrics_listening", {{"address", options.metrics_listen},
                                  {"port", absl::StrCat(server->metrics_http_->port())}});
  }
  if (replica) {
    // Unreadable certificate or key files are a configuration error, not a reason to retry.
    if (absl::StatusOr<std::shared_ptr<grpc::Channel>> c =
            OpenChannel(options.replica_of, options.follower.primary, grpc::ChannelArguments());
        !c.ok()) {
      return c.status();
    }
    if (options.auth == AuthMode::kToken) {
      server->tokens_ = TokenRegistry::Mirror();
      server->token_follower_ = std::make_unique<TokenFollower>(
          options.replica_of, server->tokens_.get(), options.follower);
      server->token_follower_->Start();
    }
    server->authorizer_ = std::make_unique<Authorizer>(options.auth, server->tokens_.get());
    server->follower_ =
        std::make_unique<ModelFollower>(options.replica_of, &server->slot_, options.follower);
    server->follower_->Start();
  } else if (absl::Status s = server->OpenPrimaryState(); !s.ok()) {
    return s;
  }
  const Authorizer* auth = server->authorizer_.get();
  server->predictor_ = std::make_unique<PredictorService>(
      auth, &server->slot_, &server->retired_, server->store_.get(), options.limits);
  server->models_ = std::make_unique<ModelsService>(auth, server->store_.get(), &server->slot_,
                                                    server->trainer_.get(), options.replica_of);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("maplex-server");
  quota.SetMaxThreads(options.max_threads);
  quota.Resize(static_cast<size_t>(options.max_call_memory_bytes));
  builder.SetResourceQuota(quota);
  builder.AddListeningPort(options.listen_address, *credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  const int half_call_ms = static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(options.max_call_duration / 2), INT32_MAX));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, half_call_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, half_call_ms);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server->metrics_.RpcInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  if (!replica) {
    builder.RegisterService(server->registry_.get());
    builder.RegisterService(server->ingest_.get());
  }
  builder.RegisterService(server->predictor_.get());
  builder.RegisterService(server->models_.get());
  if (!replica) builder.RegisterService(server->tokens_service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    if (server->trainer_ != nullptr) server->trainer_->Stop();
    if (server->follower_ != nullptr) server->follower_->Stop();
    if (server->token_follower_ != nullptr) server->token_follower_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, " (in use or not local?)"));
  }
  if (!IsLoopbackAddress(options.listen_address) && options.tls_cert_file.empty()) {
    LogWarning("plaintext_listen", {{"address", options.listen_address},
                                    {"why", options.auth == AuthMode::kToken
                                                ? "tokens cross the network unencrypted"
                                                : "no authentication and no TLS"}});
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
    health->SetServingStatus("maplex.v1.Tokens", true);
  }
  server->readiness_thread_ = std::thread([raw = server.get()] { raw->WatchReadiness(); });
  LogInfo("server_started", {{"address", options.listen_address},
                             {"port", absl::StrCat(server->port_)},
                             {"role", replica ? "replica" : "primary"},
                             {"primary", options.replica_of},
                             {"auth", options.auth == AuthMode::kToken ? "token" : "none"},
                             {"tls", options.tls_cert_file.empty() ? "off"
                                     : options.tls_client_ca_file.empty() ? "on" : "mtls"}});
  return server;
}

void MaplexServer::WatchReadiness() {
  uint64_t seen = 0;
  bool ready = false;
  while (!stopping_) {
    std::shared_ptr<const ServedModel> m = slot_.WaitNewer(seen, absl::Milliseconds(200));
    if (stopping_) break;
    if (m != nullptr && m->info.version() > seen) {
      metrics_.OnModelServed(m->info);
      seen = m->info.version();
    }
    // A replica that lost its primary for longer than max_staleness may serve an outdated
    // model: it leaves the load balancer until the primary is heard again.
    const absl::Duration silence =
        follower_ == nullptr ? absl::ZeroDuration() : absl::Now() - follower_->last_heard();
    const bool stale = silence > options_.follower.max_staleness;
    const bool now_ready = seen > 0 && !stale;
    if (now_ready == ready) continue;
    grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
    health->SetServingStatus("maplex.v1.Predictor", now_ready);
    health->SetServingStatus(now_ready);
    if (now_ready) {
      LogInfo("ready", {{"model_version", absl::StrCat(seen)}});
    } else {
      LogWarning("replica_stale",
                 {{"model_version", absl::StrCat(seen)},
                  {"primary", options_.replica_of},
                  {"silent_seconds", absl::StrCat(absl::ToDoubleSeconds(silence))}});
    }
    ready = now_ready;
  }
}

void MaplexServer::Shutdown() {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (stopped_) return;
  LogInfo("shutdown_started", {{"grace_seconds",
                                absl::StrCat(absl::ToDoubleSeconds(options_.shutdown_grace))}});
  stopping_ = true;
  if (readiness_thread_.joinable()) readiness_thread_.join();
  if (grpc_server_ != nullptr) {
    // Shutdown() of the health service sets every service NOT_SERVING and keeps it so.
    grpc_server_->GetHealthCheckService()->Shutdown();
    models_->StopWatches();
    if (tokens_service_ != nullptr) tokens_service_->StopWatches();
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoMilliseconds(options_.shutdown_grace));
  }
  if (trainer_ != nullptr) trainer_->Stop();
  if (follower_ != nullptr) follower_->Stop();
  if (token_follower_ != nullptr) token_follower_->Stop();
  store_.reset();  // checkpoints the WAL (primary)
  if (metrics_http_ != nullptr) metrics_http_->Stop();
  LogInfo("shutdown_finished");
  stopped_ = true;
  stopped_cv_.notify_all();
}

void MaplexServer::Wait() {
  std::unique_lock<std::mutex> lock(shutdown_mu_);
  stopped_cv_.wait(lock, [this] { return stopped_; });
}

MaplexServer::~MaplexServer() { Shutdown(); }

}  // namespace maplex::server

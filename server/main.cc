// maplex-server: parses flags (with MAPLEX_* environment fallbacks) into ServerOptions,
// starts the server and stops it gracefully on SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "server/server.h"
#include "platform/process.h"

using maplex::EnvOr;

ABSL_FLAG(std::string, listen, EnvOr("MAPLEX_LISTEN", "127.0.0.1:50051"),
          "address to listen on (env MAPLEX_LISTEN); loopback unless security is configured");
ABSL_FLAG(std::string, db, EnvOr("MAPLEX_DB", "maplex.db"),
          "SQLite database file, created when missing (env MAPLEX_DB)");
ABSL_FLAG(std::string, method, EnvOr("MAPLEX_METHOD", "maplex"),
          "model to train: baseline, maple, maple+ve, maple+w, maplex (env MAPLEX_METHOD)");
ABSL_FLAG(double, retrain_debounce_seconds,
          std::atof(EnvOr("MAPLEX_RETRAIN_DEBOUNCE_SECONDS", "2").c_str()),
          "retrain once no new data arrived for this long (env MAPLEX_RETRAIN_DEBOUNCE_SECONDS)");
ABSL_FLAG(double, shutdown_grace_seconds,
          std::atof(EnvOr("MAPLEX_SHUTDOWN_GRACE_SECONDS", "10").c_str()),
          "time in-flight calls get to finish at shutdown (env MAPLEX_SHUTDOWN_GRACE_SECONDS)");
// --- security and limits (docs/RELIABILITY.md) ---
ABSL_FLAG(std::string, auth, EnvOr("MAPLEX_AUTH", "none"),
          "none (every caller is the operator; loopback only) or token (bearer tokens) "
          "(env MAPLEX_AUTH)");
ABSL_FLAG(std::string, bootstrap_token_file, EnvOr("MAPLEX_BOOTSTRAP_TOKEN_FILE", ""),
          "--auth=token: when no operator token is active, create one and write its secret to "
          "this new file (env MAPLEX_BOOTSTRAP_TOKEN_FILE)");
ABSL_FLAG(bool, insecure_allow_unauthenticated,
          EnvOr("MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED", "false") == std::string("true"),
          "serve a non-loopback address without tokens or client certificates "
          "(env MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED=true)");
ABSL_FLAG(std::string, tls_cert, EnvOr("MAPLEX_TLS_CERT", ""),
          "server certificate chain (PEM): serve TLS (env MAPLEX_TLS_CERT)");
ABSL_FLAG(std::string, tls_key, EnvOr("MAPLEX_TLS_KEY", ""),
          "private key (PEM) of --tls_cert (env MAPLEX_TLS_KEY)");
ABSL_FLAG(std::string, tls_client_ca, EnvOr("MAPLEX_TLS_CLIENT_CA", ""),
          "CA bundle (PEM): require client certificates it signed (env MAPLEX_TLS_CLIENT_CA)");
ABSL_FLAG(int, max_message_bytes,
          std::atoi(EnvOr("MAPLEX_MAX_MESSAGE_BYTES",
                          std::to_string(maplex::server::ServerOptions().max_message_bytes).c_str())
                        .c_str()),
          "largest request or response message, in bytes (env MAPLEX_MAX_MESSAGE_BYTES)");
ABSL_FLAG(double, agent_measurements_per_second,
          std::atof(EnvOr("MAPLEX_AGENT_MEASUREMENTS_PER_SECOND",
                          std::to_string(maplex::server::Limits().agent_measurements_per_second)
                              .c_str())
                        .c_str()),
          "ingest rate of each agent token (env MAPLEX_AGENT_MEASUREMENTS_PER_SECOND)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "maplex-server: stores latency measurements, trains MAPLE-X and serves predictions.\n"
      "Usage: maplex-server [--listen=127.0.0.1:50051] [--db=maplex.db] [--method=maplex]\n"
      "       [--auth=none|token [--bootstrap_token_file=F]] [--tls_cert=C --tls_key=K\n"
      "       [--tls_client_ca=CA]]");
  absl::ParseCommandLine(argc, argv);

  maplex::server::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.database_path = absl::GetFlag(FLAGS_db);
  options.trainer.debounce = absl::Seconds(absl::GetFlag(FLAGS_retrain_debounce_seconds));
  options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  absl::StatusOr<maplex::server::AuthMode> auth =
      maplex::server::ParseAuthMode(absl::GetFlag(FLAGS_auth));
  if (!auth.ok()) {
    std::fprintf(stderr, "maplex-server: --%s\n", std::string(auth.status().message()).c_str());
    return 2;
  }
  options.auth = *auth;
  options.bootstrap_token_file = absl::GetFlag(FLAGS_bootstrap_token_file);
  options.allow_unauthenticated_non_loopback = absl::GetFlag(FLAGS_insecure_allow_unauthenticated);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.limits.agent_measurements_per_second = absl::GetFlag(FLAGS_agent_measurements_per_second);
  absl::StatusOr<maplex::core::Method> method =
      maplex::core::ParseMethod(absl::GetFlag(FLAGS_method));
  if (!method.ok()) {
    std::fprintf(stderr, "maplex-server: --method: %s\n", std::string(method.status().message()).c_str());
    return 2;
  }
  options.trainer.train.method = *method;

  // Block the stop signals in every thread; one waits for them below.
  sigset_t stop_signals = maplex::BlockStopSignals();

  absl::StatusOr<std::unique_ptr<maplex::server::MaplexServer>> server =
      maplex::server::MaplexServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "maplex-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  (*server)->Shutdown();
  return 0;
}

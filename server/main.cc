// maplex-server: parses flags (with MAPLEX_* environment fallbacks) into ServerOptions,
// starts the server and stops it gracefully on SIGTERM or SIGINT.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "platform/grpc_channel.h"
#include "platform/grpc_transport.h"
#include "platform/log.h"
#include "platform/process.h"
#include "server/server.h"

using maplex::EnvOr;

ABSL_FLAG(std::string, listen, EnvOr("MAPLEX_LISTEN", "127.0.0.1:50051"),
          "address to listen on (env MAPLEX_LISTEN); loopback unless security is configured");
// Empty by default so that a replica can tell a database was asked for.
ABSL_FLAG(std::string, db, EnvOr("MAPLEX_DB", ""),
          "SQLite database file, created when missing (env MAPLEX_DB; default maplex.db); "
          "not with --replica_of");
ABSL_FLAG(std::string, replica_of, EnvOr("MAPLEX_REPLICA_OF", ""),
          "run as a predictor replica of the primary at this address: no database, follows "
          "its model versions, serves Predict (env MAPLEX_REPLICA_OF)");
ABSL_FLAG(std::string, primary_token_file, EnvOr("MAPLEX_PRIMARY_TOKEN_FILE", ""),
          "replica: file whose first line is a replica token of the primary (maplex tokens "
          "create --role replica); with --auth=token the replica also checks its callers "
          "against the primary's tokens with it "
          "(env MAPLEX_PRIMARY_TOKEN_FILE)");
ABSL_FLAG(std::string, primary_ca, EnvOr("MAPLEX_PRIMARY_CA", ""),
          "replica: PEM CA bundle of the primary's TLS certificate (env MAPLEX_PRIMARY_CA)");
ABSL_FLAG(std::string, primary_client_cert, EnvOr("MAPLEX_PRIMARY_CLIENT_CERT", ""),
          "replica: PEM client certificate for a primary that requires one");
ABSL_FLAG(std::string, primary_client_key, EnvOr("MAPLEX_PRIMARY_CLIENT_KEY", ""),
          "replica: PEM key of --primary_client_cert");
ABSL_FLAG(std::string, metrics_listen, EnvOr("MAPLEX_METRICS_LISTEN", "127.0.0.1:9464"),
          "serve Prometheus GET /metrics over HTTP on this IPv4 address:port; empty disables "
          "(env MAPLEX_METRICS_LISTEN)");
ABSL_FLAG(std::string, log_level, EnvOr("MAPLEX_LOG_LEVEL", "info"),
          "least severe log events written: debug, info, warning, error (env MAPLEX_LOG_LEVEL)");
ABSL_FLAG(std::string, method, EnvOr("MAPLEX_METHOD", "maplex"),
          "model to train: baseline, maple, maple+ve, maple+w, maplex (env MAPLEX_METHOD)");
ABSL_FLAG(double, retrain_debounce_seconds,
          EnvOr("MAPLEX_RETRAIN_DEBOUNCE_SECONDS", 2.0),
          "retrain once no new data arrived for this long (env MAPLEX_RETRAIN_DEBOUNCE_SECONDS)");
ABSL_FLAG(int, keep_model_versions,
          EnvOr("MAPLEX_KEEP_MODEL_VERSIONS", maplex::server::TrainerOptions().keep_model_versions),
          "model versions kept in the database besides pinned ones: the newest N; older ones "
          "are deleted after each training (env MAPLEX_KEEP_MODEL_VERSIONS; at least 1)");
ABSL_FLAG(std::string, pin_model_versions, EnvOr("MAPLEX_PIN_MODEL_VERSIONS", ""),
          "comma-separated model versions kept however old, e.g. the one a NAS run reported "
          "against (env MAPLEX_PIN_MODEL_VERSIONS)");
ABSL_FLAG(double, shutdown_grace_seconds,
          EnvOr("MAPLEX_SHUTDOWN_GRACE_SECONDS", 10.0),
          "time in-flight calls get to finish at shutdown (env MAPLEX_SHUTDOWN_GRACE_SECONDS)");
// --- security and limits (docs/RELIABILITY.md) ---
ABSL_FLAG(std::string, auth, EnvOr("MAPLEX_AUTH", "none"),
          "none (every caller is the operator; loopback only) or token (bearer tokens) "
          "(env MAPLEX_AUTH)");
ABSL_FLAG(std::string, bootstrap_token_file, EnvOr("MAPLEX_BOOTSTRAP_TOKEN_FILE", ""),
          "--auth=token: when no operator token is active, create one and write its secret to "
          "this new file (env MAPLEX_BOOTSTRAP_TOKEN_FILE)");
ABSL_FLAG(std::string, operator_token_file, EnvOr("MAPLEX_OPERATOR_TOKEN_FILE", ""),
          "--auth=token: file (e.g. a mounted Kubernetes Secret) whose first line is an "
          "operator token secret of your choosing, at least 32 characters; registered at start "
          "unless known (env MAPLEX_OPERATOR_TOKEN_FILE)");
ABSL_FLAG(double, replica_max_staleness_seconds,
          EnvOr("MAPLEX_REPLICA_MAX_STALENESS_SECONDS",
                absl::ToDoubleSeconds(maplex::server::FollowerOptions().max_staleness)),
          "replica: NOT_SERVING, and refusing tokens, after hearing nothing from the primary "
          "for this long (env MAPLEX_REPLICA_MAX_STALENESS_SECONDS)");
ABSL_FLAG(bool, insecure_allow_unauthenticated,
          EnvOr("MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED", false),
          "serve a non-loopback address without tokens or client certificates "
          "(env MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED=true)");
ABSL_FLAG(std::string, tls_cert, EnvOr("MAPLEX_TLS_CERT", ""),
          "server certificate chain (PEM): serve TLS (env MAPLEX_TLS_CERT)");
ABSL_FLAG(std::string, tls_key, EnvOr("MAPLEX_TLS_KEY", ""),
          "private key (PEM) of --tls_cert (env MAPLEX_TLS_KEY)");
ABSL_FLAG(std::string, tls_client_ca, EnvOr("MAPLEX_TLS_CLIENT_CA", ""),
          "CA bundle (PEM): require client certificates it signed (env MAPLEX_TLS_CLIENT_CA)");
ABSL_FLAG(int, max_message_bytes,
          EnvOr("MAPLEX_MAX_MESSAGE_BYTES", maplex::server::ServerOptions().max_message_bytes),
          "largest request or response message, in bytes (env MAPLEX_MAX_MESSAGE_BYTES)");
ABSL_FLAG(double, max_call_seconds,
          EnvOr("MAPLEX_MAX_CALL_SECONDS",
                absl::ToDoubleSeconds(maplex::server::ServerOptions().max_call_duration)),
          "no call (stream) lasts longer; each gets at least half of it "
          "(env MAPLEX_MAX_CALL_SECONDS)");
ABSL_FLAG(int, max_threads,
          EnvOr("MAPLEX_MAX_THREADS", maplex::server::ServerOptions().max_threads),
          "threads for in-flight calls, server-wide; a call finding none free is refused with "
          "RESOURCE_EXHAUSTED (env MAPLEX_MAX_THREADS)");
ABSL_FLAG(int, max_call_memory_mib,
          EnvOr("MAPLEX_MAX_CALL_MEMORY_MIB",
                static_cast<int>(maplex::server::ServerOptions().max_call_memory_bytes >> 20)),
          "memory gRPC may hold for in-flight calls and connections, server-wide, in MiB "
          "(env MAPLEX_MAX_CALL_MEMORY_MIB)");
ABSL_FLAG(double, agent_measurements_per_second,
          EnvOr("MAPLEX_AGENT_MEASUREMENTS_PER_SECOND",
                maplex::server::Limits().agent_measurements_per_second),
          "ingest rate of each agent token (env MAPLEX_AGENT_MEASUREMENTS_PER_SECOND)");

namespace {

// Flags may be spelled with '-' as well as '_' (--replica-of as the docs write it): the
// name part of every "--name[=value]" argument before a bare "--" gets '_' for '-'.
std::vector<char*> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>* storage) {
  storage->assign(argv, argv + argc);
  for (size_t i = 1; i < storage->size(); ++i) {
    std::string& a = (*storage)[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  std::vector<char*> out;
  for (std::string& a : *storage) out.push_back(a.data());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  maplex::EnableLargeMessageTcpReads();  // before any gRPC object or thread exists
  absl::SetProgramUsageMessage(
      "maplex-server: stores latency measurements, trains MAPLE-X and serves predictions.\n"
      "Usage: maplex-server [--listen=127.0.0.1:50051] [--db=maplex.db] [--method=maplex]\n"
      "       [--auth=none|token [--bootstrap_token_file=F | --operator_token_file=F]]\n"
      "       [--tls_cert=C --tls_key=K\n"
      "       [--tls_client_ca=CA]]\n"
      "       maplex-server --replica-of=PRIMARY:50051 [--listen=...]\n"
      "       [--auth=token --primary_token_file=REPLICA_TOKEN_FILE]");
  std::vector<std::string> arg_storage;
  std::vector<char*> args = NormalizeFlagNames(argc, argv, &arg_storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());

  maplex::server::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  absl::StatusOr<maplex::LogLevel> log_level = maplex::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!log_level.ok()) {
    std::fprintf(stderr, "maplex-server: --log_level: %s\n",
                 std::string(log_level.status().message()).c_str());
    return 2;
  }
  maplex::SetMinLogLevel(*log_level);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.replica_of = absl::GetFlag(FLAGS_replica_of);
  options.database_path = absl::GetFlag(FLAGS_db);
  if (!options.replica_of.empty() && !options.database_path.empty()) {
    std::fprintf(stderr,
                 "maplex-server: --replica_of and --db (or MAPLEX_DB) exclude each other: a "
                 "replica holds no database\n");
    return 2;
  }
  if (options.database_path.empty()) options.database_path = "maplex.db";
  if (const std::string file = absl::GetFlag(FLAGS_primary_token_file); !file.empty()) {
    absl::StatusOr<std::string> token = maplex::ResolveToken("", file);
    if (!token.ok()) {
      std::fprintf(stderr, "maplex-server: --primary_token_file: %s\n",
                   std::string(token.status().message()).c_str());
      return 2;
    }
    options.follower.primary.token = *token;
  }
  options.follower.primary.ca_file = absl::GetFlag(FLAGS_primary_ca);
  options.follower.primary.client_cert_file = absl::GetFlag(FLAGS_primary_client_cert);
  options.follower.primary.client_key_file = absl::GetFlag(FLAGS_primary_client_key);
  options.trainer.debounce = absl::Seconds(absl::GetFlag(FLAGS_retrain_debounce_seconds));
  options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  options.trainer.keep_model_versions = absl::GetFlag(FLAGS_keep_model_versions);
  if (options.trainer.keep_model_versions < 1) {
    std::fprintf(stderr, "maplex-server: --keep_model_versions: %d is not at least 1\n",
                 options.trainer.keep_model_versions);
    return 2;
  }
  for (absl::string_view v :
       absl::StrSplit(absl::GetFlag(FLAGS_pin_model_versions), ',', absl::SkipWhitespace())) {
    uint64_t version = 0;
    if (!absl::SimpleAtoi(v, &version) || version == 0) {
      std::fprintf(stderr, "maplex-server: --pin_model_versions: \"%s\" is not a version\n",
                   std::string(v).c_str());
      return 2;
    }
    options.trainer.pinned_model_versions.push_back(version);
  }
  absl::StatusOr<maplex::server::AuthMode> auth =
      maplex::server::ParseAuthMode(absl::GetFlag(FLAGS_auth));
  if (!auth.ok()) {
    std::fprintf(stderr, "maplex-server: --%s\n", std::string(auth.status().message()).c_str());
    return 2;
  }
  options.auth = *auth;
  options.bootstrap_token_file = absl::GetFlag(FLAGS_bootstrap_token_file);
  options.operator_token_file = absl::GetFlag(FLAGS_operator_token_file);
  if (double staleness = absl::GetFlag(FLAGS_replica_max_staleness_seconds); staleness > 0) {
    options.follower.max_staleness = absl::Seconds(staleness);
  } else {
    std::fprintf(stderr, "maplex-server: --replica_max_staleness_seconds: %g is not positive\n",
                 staleness);
    return 2;
  }
  options.allow_unauthenticated_non_loopback = absl::GetFlag(FLAGS_insecure_allow_unauthenticated);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_call_duration = absl::Seconds(absl::GetFlag(FLAGS_max_call_seconds));
  options.max_threads = absl::GetFlag(FLAGS_max_threads);
  options.max_call_memory_bytes = int64_t{absl::GetFlag(FLAGS_max_call_memory_mib)} << 20;
  options.limits.agent_measurements_per_second = absl::GetFlag(FLAGS_agent_measurements_per_second);
  absl::StatusOr<maplex::core::Method> method =
      maplex::core::ParseMethod(absl::GetFlag(FLAGS_method));
  if (!method.ok()) {
    std::fprintf(stderr, "maplex-server: --method: %s\n", std::string(method.status().message()).c_str());
    return 2;
  }
  options.trainer.train.method = *method;
  // A malformed MAPLEX_* number is an error, not a silent 0 or a truncated value (absl
  // refuses malformed flags on the command line the same way). Checked after every flag
  // was read: absl computes a flag's default, and so calls EnvOr, on its first read.
  if (absl::Status env = maplex::CheckEnvValues(); !env.ok()) {
    std::fprintf(stderr, "maplex-server: %s\n", std::string(env.message()).c_str());
    return 2;
  }

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

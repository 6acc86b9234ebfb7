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
#include "absl/strings/str_cat.h"
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
ABSL_FLAG(std::string, metrics_listen, EnvOr("MAPLEX_METRICS_LISTEN", "127.0.0.1:9464"),
          "serve Prometheus GET /metrics over HTTP on this IPv4 address:port; empty disables "
          "(env MAPLEX_METRICS_LISTEN)");
ABSL_FLAG(std::string, log_level, EnvOr("MAPLEX_LOG_LEVEL", "info"),
          "least severe log events written: debug, info, warning, error (env MAPLEX_LOG_LEVEL)");
ABSL_FLAG(std::string, method, EnvOr("MAPLEX_METHOD", "maplex"),
          "model to train: baseline, maple, maple+ve, maple+w, maplex (env MAPLEX_METHOD)");
ABSL_FLAG(double, retrain_debounce_seconds,
          std::atof(EnvOr("MAPLEX_RETRAIN_DEBOUNCE_SECONDS", "2").c_str()),
          "retrain once no new data arrived for this long (env MAPLEX_RETRAIN_DEBOUNCE_SECONDS)");
ABSL_FLAG(double, shutdown_grace_seconds,
          std::atof(EnvOr("MAPLEX_SHUTDOWN_GRACE_SECONDS", "10").c_str()),
          "time in-flight calls get to finish at shutdown (env MAPLEX_SHUTDOWN_GRACE_SECONDS)");

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
  absl::SetProgramUsageMessage(
      "maplex-server: stores latency measurements, trains MAPLE-X and serves predictions.\n"
      "Usage: maplex-server [--listen=127.0.0.1:50051] [--db=maplex.db] [--method=maplex]\n"
      "       maplex-server --replica-of=PRIMARY:50051 [--listen=...]");
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
  options.trainer.debounce = absl::Seconds(absl::GetFlag(FLAGS_retrain_debounce_seconds));
  options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
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

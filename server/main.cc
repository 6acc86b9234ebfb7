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

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "maplex-server: stores latency measurements, trains MAPLE-X and serves predictions.\n"
      "Usage: maplex-server [--listen=127.0.0.1:50051] [--db=maplex.db] [--method=maplex]");
  absl::ParseCommandLine(argc, argv);

  maplex::server::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.database_path = absl::GetFlag(FLAGS_db);
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

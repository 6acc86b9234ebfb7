// Test fixtures shared by the integration tests: a temporary directory, an in-process
// maplex server on 127.0.0.1:0 over a fresh database, and a client connected to it.
#ifndef MAPLEX_TESTS_TESTING_TEST_SERVER_H_
#define MAPLEX_TESTS_TESTING_TEST_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "gtest/gtest.h"
#include "maplex/v1/ingest.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace maplex::testing {

inline server::ServerOptions TestServerOptions(const std::string& db_path) {
  server::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.database_path = db_path;
  options.shutdown_grace = absl::Seconds(2);
  // Tests drive training with Retrain; a long debounce keeps the loop out of their way.
  options.trainer.debounce = absl::Seconds(600);
  options.trainer.max_delay = absl::Seconds(600);
  return options;
}

// A client of `server` on loopback, sending `token` ("" for none) with every call, each
// call with a deadline of `timeout`.
inline client::MaplexClient ConnectTo(const server::MaplexServer& server,
                                      const std::string& token = "",
                                      absl::Duration timeout = absl::Seconds(60)) {
  client::ClientOptions options;
  options.address = "127.0.0.1:" + std::to_string(server.port());
  options.timeout = timeout;
  options.security.token = token;
  return *client::MaplexClient::Connect(options);
}

inline v1::RegisterDeviceRequest TestDevice(const std::string& id, int batch = 1) {
  v1::RegisterDeviceRequest r;
  r.set_id(id);
  r.set_hardware_fingerprint("test:" + id);
  r.set_hardware_name("Test hardware " + id);
  r.mutable_config()->set_runtime("eigen");
  r.mutable_config()->set_precision("fp32");
  r.mutable_config()->set_batch_size(batch);
  r.mutable_config()->set_threads(1);
  r.mutable_spec()->set_category("desktop_cpu");
  return r;
}

inline v1::Measurement TestMeasurement(const std::string& id, const std::string& device,
                                       int32_t arch, double ms) {
  v1::Measurement m;
  m.set_id(id);
  m.set_device_id(device);
  m.mutable_arch()->set_index(arch);
  m.mutable_stats()->set_median_ms(ms);
  m.mutable_stats()->set_p90_ms(ms * 1.05);
  m.mutable_stats()->set_repeats(5);
  m.mutable_protocol()->set_tool("test");
  return m;
}

}  // namespace maplex::testing

#endif  // MAPLEX_TESTS_TESTING_TEST_SERVER_H_

// Integration test of the server's metrics: an in-process server with /metrics on
// 127.0.0.1:0, a few RPCs, then a scrape over loopback.
#include "server/server_metrics.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maplex/v1/ingest.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/test_server.h"

namespace maplex::server {
namespace {

using ::maplex::testing::ConnectTo;
using ::maplex::testing::TempDir;
using ::maplex::testing::TestDevice;
using ::maplex::testing::TestMeasurement;
using ::maplex::testing::TestServerOptions;

// GET /metrics over loopback; the body of the response.
std::string Scrape(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  send(fd, request.data(), request.size(), 0);
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 200 OK"));
  return response.substr(response.find("\r\n\r\n") + 4);
}

// The value of the sample whose name and labels are exactly `series`; NaN when absent.
double Sample(const std::string& page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
  }
  return std::nan("");
}

TEST(ServerMetricsTest, ScrapeReflectsRpcsIngestSpoolDepthAndTheModel) {
  TempDir dir;
  ServerOptions options = TestServerOptions(dir.File("maplex.db"));
  options.metrics_listen = "127.0.0.1:0";
  auto server = MaplexServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->metrics_port(), 0);
  client::MaplexClient client = ConnectTo(**server);

  std::string before = Scrape((*server)->metrics_port());
  EXPECT_EQ(Sample(before, "maplex_model_version"), 0);
  EXPECT_TRUE(std::isnan(Sample(before, "maplex_model_age_seconds")));  // no model, no age

  ASSERT_TRUE(client.RegisterDevice(TestDevice("ref")).ok());
  ASSERT_TRUE(client.RegisterDevice(TestDevice("target")).ok());
  std::vector<v1::Measurement> ms;
  for (int a = 0; a < core::kNb201CellCount; ++a) {
    ms.push_back(TestMeasurement("ref:" + std::to_string(a), "ref", a, 1.0 + a % 7));
  }
  ASSERT_TRUE(client.SendMeasurements(ms, 5000).ok());
  ASSERT_TRUE(client.SendMeasurements({ms[0], ms[1]}, 10).ok());  // replays

  // An agent's batch carries its spool depth.
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                     grpc::InsecureChannelCredentials());
  auto ingest = v1::Ingest::NewStub(channel);
  grpc::ClientContext context;
  auto stream = ingest->StreamMeasurements(&context);
  v1::MeasurementBatch batch;
  for (int a = 0; a < 10; ++a) {
    *batch.add_measurements() =
        TestMeasurement("target:" + std::to_string(a), "target", a * 1000, 2.0 + a);
  }
  batch.set_spool_depth(25);
  v1::MeasurementAck ack;
  ASSERT_TRUE(stream->Write(batch));
  ASSERT_TRUE(stream->Read(&ack));
  stream->WritesDone();
  ASSERT_TRUE(stream->Finish().ok());

  absl::StatusOr<v1::ModelInfo> model = client.Retrain();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(client.Predict("target", {client::Nb201Index(1)}).ok());
  ASSERT_TRUE(client.Predict("target", {client::Nb201Index(2)}).ok());
  EXPECT_FALSE(client.Predict("nobody", {client::Nb201Index(1)}).ok());
  // The readiness watcher sets the model gauges when it sees the new version.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::string page;
  do {
    page = Scrape((*server)->metrics_port());
  } while (Sample(page, "maplex_model_version") != model->version() && absl::Now() < deadline);

  EXPECT_EQ(Sample(page, "maplex_model_version"), model->version());
  EXPECT_GE(Sample(page, "maplex_model_age_seconds"), 0);
  EXPECT_LT(Sample(page, "maplex_model_age_seconds"), 60);
  EXPECT_EQ(Sample(page, "maplex_measurements_stored_total"), core::kNb201CellCount + 10);
  EXPECT_EQ(Sample(page, "maplex_measurements_replayed_total"), 2);
  EXPECT_EQ(Sample(page, "maplex_agent_spool_depth{device=\"target\"}"), 25);
  EXPECT_EQ(Sample(page, "maplex_model_device_samples{device=\"target\"}"), 10);
  EXPECT_EQ(Sample(page, "maplex_model_device_samples{device=\"ref\"}"), core::kNb201CellCount);
  // Cross-validated figures: the target's, as the model's info has them; the reference
  // device is not scored, so it has none (no made-up value).
  const v1::DeviceAccuracy* target = nullptr;
  for (const v1::DeviceAccuracy& a : model->device_accuracy()) {
    if (a.device_id() == "target") target = &a;
  }
  ASSERT_NE(target, nullptr);
  ASSERT_EQ(target->basis(), "cross-validated");
  EXPECT_NEAR(Sample(page, "maplex_model_device_cv_spearman{device=\"target\"}"),
              target->spearman(), 1e-12);
  EXPECT_NEAR(Sample(page, "maplex_model_device_cv_acc10{device=\"target\"}"), target->acc10(),
              1e-12);
  EXPECT_NEAR(Sample(page, "maplex_model_device_cv_mape_percent{device=\"target\"}"),
              target->mape(), 1e-9);
  EXPECT_GT(target->mape(), 0);
  EXPECT_EQ(Sample(page, "maplex_model_device_cv_scored{device=\"target\"}"), 10);
  EXPECT_TRUE(std::isnan(Sample(page, "maplex_model_device_cv_spearman{device=\"ref\"}")));
  EXPECT_THAT(page, ::testing::Not(::testing::HasSubstr("in_sample")));
  // prometheus-cpp writes labels in name order (code, method; le last); PromQL matches
  // labels by name, so dashboards do not depend on it.
  auto rpc = [](const std::string& series, const std::string& code, const std::string& method,
                const std::string& extra = "") {
    return "maplex_rpc_duration_seconds_" + series + "{code=\"" + code + "\",method=\"" +
           method + "\"" + extra + "}";
  };
  const std::string predict = "/maplex.v1.Predictor/Predict";
  EXPECT_EQ(Sample(page, rpc("count", "OK", predict)), 2);
  EXPECT_EQ(Sample(page, rpc("count", "NOT_FOUND", predict)), 1);
  EXPECT_EQ(Sample(page, rpc("bucket", "OK", predict, ",le=\"+Inf\"")), 2);
  EXPECT_EQ(Sample(page, rpc("count", "OK", "/maplex.v1.Models/Retrain")), 1);
  EXPECT_EQ(Sample(page, rpc("count", "OK", "/maplex.v1.Ingest/StreamMeasurements")), 3);
}

}  // namespace
}  // namespace maplex::server

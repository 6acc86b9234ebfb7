// The C++ client of a maplex server: one connection, one method per RPC, errors as
// absl::Status (the gRPC code and message, unchanged). Every call has a deadline; TLS and
// the bearer token come from ClientOptions::security (platform/grpc_channel.h).
//
//   absl::StatusOr<MaplexClient> client = MaplexClient::Connect({"127.0.0.1:50051"});
//   absl::StatusOr<v1::PredictResponse> r =
//       client->Predict("gold_6240", {Nb201Index(42), Nb201Cell("|nor_conv_3x3~0|+...")});
#ifndef MAPLEX_CLIENT_CLIENT_H_
#define MAPLEX_CLIENT_CLIENT_H_

#include <grpcpp/channel.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "maplex/v1/ingest.grpc.pb.h"
#include "maplex/v1/models.grpc.pb.h"
#include "maplex/v1/predictor.grpc.pb.h"
#include "maplex/v1/registry.grpc.pb.h"
#include "maplex/v1/tokens.grpc.pb.h"
#include "platform/grpc_channel.h"

namespace maplex::client {

struct ClientOptions {
  std::string address = "127.0.0.1:50051";
  absl::Duration timeout = absl::Seconds(30);  // deadline of each unary call
  // Deadline of one whole measurement stream (SendMeasurements): an import of the whole
  // bundled data set takes well under a minute on loopback.
  absl::Duration stream_timeout = absl::Minutes(10);
  ChannelSecurity security;  // TLS and bearer token; plaintext and no token by default
  // PredictBatch sends a batch given one byte per choice packed two choices per byte
  // (ArchitectureBatch.bits_per_choice = 4) when it holds at least this many bytes and every
  // code fits in 4 bits (NB201, FBNet): half the request, which for a 100,000-architecture
  // FBNet batch is a sizeable part of the call's time. Smaller batches go as given. Set it
  // to SIZE_MAX for a server built before bits_per_choice (it would misread packed bytes).
  size_t pack_batches_from_bytes = 4096;
};

// Architecture messages for the two older NB201 encodings.
maplex::v1::Architecture Nb201Index(int32_t index);
maplex::v1::Architecture Nb201Cell(const std::string& cell);
// An architecture of any space by its canonical string, e.g.
// Canonical("fbnet", "k5_e6-skip-k3_e1_g2-...") (core/arch; "" = nb201).
maplex::v1::Architecture Canonical(const std::string& space, const std::string& canonical);

// The absl::Status carrying a gRPC status's code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Fills the lower_ms and upper_ms columns from an answer's interval factors (set when the
// request asked for interval_factors): latency_ms[i] times each factor, as the model computes
// them. Columns that already carry the interval are left as they are. Clears the factors.
void ExpandIntervalFactors(maplex::v1::PredictionColumns* columns);

class MaplexClient {
 public:
  static absl::StatusOr<MaplexClient> Connect(const ClientOptions& options);

  // grpc.health.v1 status of `service` ("" = the whole server): SERVING, NOT_SERVING, ...
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> Health(
      const std::string& service);

  absl::StatusOr<maplex::v1::RegisterDeviceResponse> RegisterDevice(
      const maplex::v1::RegisterDeviceRequest& request);
  absl::StatusOr<maplex::v1::Device> GetDevice(const std::string& id);
  // All pages of ListDevices.
  absl::StatusOr<std::vector<maplex::v1::Device>> ListDevices(
      maplex::v1::ListDevicesRequest request);
  absl::StatusOr<maplex::v1::Device> UpdateDevice(const maplex::v1::UpdateDeviceRequest& request);
  absl::StatusOr<maplex::v1::Device> RetireDevice(const std::string& id);
  // The device's measured latency of each architecture of `space` ("" = nb201), every
  // page followed (`page_size` per call; 0 = the server's default): NB201 by index, other
  // spaces by canonical string.
  absl::StatusOr<std::vector<maplex::v1::MeasuredLatency>> ListMeasurements(
      const std::string& device_id, const std::string& space = "", int page_size = 0);

  absl::StatusOr<maplex::v1::PredictResponse> Predict(
      const std::string& device_id, const std::vector<maplex::v1::Architecture>& archs,
      uint64_t model_version = 0);
  // The same predictions as PredictResponse.columns: three packed arrays for the whole batch
  // instead of one message per architecture; several times cheaper for large batches.
  absl::StatusOr<maplex::v1::PredictResponse> PredictColumnar(
      const std::string& device_id, const std::vector<maplex::v1::Architecture>& archs,
      uint64_t model_version = 0);
  // Predictions for a compact batch (maplex.v1.ArchitectureBatch), answered in columns: the
  // cheapest form for the largest batches. Sends PredictBatchRequest(...): a large batch of
  // one byte per choice goes packed (ClientOptions::pack_batches_from_bytes), and the answer's
  // interval comes as two factors, expanded here into lower_ms and upper_ms
  // (ExpandIntervalFactors): the caller always sees three full columns.
  absl::StatusOr<maplex::v1::PredictResponse> PredictBatch(
      const std::string& device_id, const maplex::v1::ArchitectureBatch& batch,
      uint64_t model_version = 0);
  // The request PredictBatch sends: `batch` packed two choices per byte when its
  // bits_per_choice is 0 or 8, it has at least pack_batches_from_bytes bytes and every code
  // is below 16; otherwise `batch` unchanged (a code of 16 or more goes as given, so the
  // server names it). Columnar, with interval_factors.
  maplex::v1::PredictRequest PredictBatchRequest(const std::string& device_id,
                                                 const maplex::v1::ArchitectureBatch& batch,
                                                 uint64_t model_version = 0) const;

  // Every kept model version, newest first, following the pages (`page_size` per call;
  // 0 = the server's default).
  absl::StatusOr<std::vector<maplex::v1::ModelInfo>> ListModels(int page_size = 0);
  absl::StatusOr<maplex::v1::ModelInfo> GetModel(uint64_t version);
  absl::StatusOr<maplex::v1::ModelInfo> Retrain();

  // Streams `measurements` in batches of `batch_size` and waits for every ack. Returns the
  // summed ack; fails with the server's status when a batch is rejected (earlier batches
  // stay stored). `on_ack` (optional) sees each ack as it arrives. With `replace`
  // (operator only), each batch first deletes the stored measurements of the (device,
  // architecture) pairs it names (MeasurementBatch.replace).
  absl::StatusOr<maplex::v1::MeasurementAck> SendMeasurements(
      const std::vector<maplex::v1::Measurement>& measurements, int batch_size,
      const std::function<void(const maplex::v1::MeasurementAck&)>& on_ack = nullptr,
      bool replace = false);
  // The same, moving the measurements into the batches instead of copying them (as the
  // agent's uplink does); `measurements` is left unspecified.
  absl::StatusOr<maplex::v1::MeasurementAck> SendMeasurements(
      std::vector<maplex::v1::Measurement>&& measurements, int batch_size,
      const std::function<void(const maplex::v1::MeasurementAck&)>& on_ack = nullptr,
      bool replace = false);
  // Several groups of measurements (an import: one group per device) through ONE stream,
  // so the server checks a batch while it commits the one before across group boundaries
  // too (a stream per group would drain and refill that pipeline at every group). A batch
  // never spans two groups; returns one summed ack per group, in order (empty groups get
  // an empty ack). Fails like SendMeasurements; the groups are left unspecified.
  absl::StatusOr<std::vector<maplex::v1::MeasurementAck>> SendMeasurementGroups(
      std::vector<std::vector<maplex::v1::Measurement>>&& groups, int batch_size,
      bool replace = false);
  absl::StatusOr<maplex::v1::ReportDescriptorResponse> ReportDescriptor(
      const maplex::v1::ReportDescriptorRequest& request);

  // Operators only. The response carries the token's secret, the only time it is shown.
  absl::StatusOr<maplex::v1::CreateTokenResponse> CreateToken(
      const maplex::v1::CreateTokenRequest& request);
  absl::StatusOr<std::vector<maplex::v1::Token>> ListTokens();
  absl::StatusOr<maplex::v1::Token> RevokeToken(int64_t id);

 private:
  MaplexClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);
  std::unique_ptr<grpc::ClientContext> Context() const;
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(Stub& stub,
                                grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                             Response*),
                                const Request& request) const;
  // SendMeasurements over `count` measurements; `add(i, batch)` appends the i-th. A batch
  // starting at i ends before `limit(i)` when `limit` is given (group boundaries).
  absl::StatusOr<maplex::v1::MeasurementAck> SendBatches(
      size_t count, int batch_size,
      const std::function<void(size_t, maplex::v1::MeasurementBatch*)>& add,
      const std::function<void(const maplex::v1::MeasurementAck&)>& on_ack, bool replace,
      const std::function<size_t(size_t)>& limit = nullptr);

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<grpc::health::v1::Health::Stub> health_;
  std::shared_ptr<maplex::v1::DeviceRegistry::Stub> registry_;
  std::shared_ptr<maplex::v1::Ingest::Stub> ingest_;
  std::shared_ptr<maplex::v1::Predictor::Stub> predictor_;
  std::shared_ptr<maplex::v1::Models::Stub> models_;
  std::shared_ptr<maplex::v1::Tokens::Stub> tokens_;
};

}  // namespace maplex::client

#endif  // MAPLEX_CLIENT_CLIENT_H_

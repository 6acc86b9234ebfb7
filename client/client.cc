#include "client/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "core/arch/packed_choices.h"

namespace maplex::client {

maplex::v1::Architecture Nb201Index(int32_t index) {
  maplex::v1::Architecture a;
  a.set_index(index);
  return a;
}

maplex::v1::Architecture Nb201Cell(const std::string& cell) {
  maplex::v1::Architecture a;
  a.set_cell(cell);
  return a;
}

maplex::v1::Architecture Canonical(const std::string& space, const std::string& canonical) {
  maplex::v1::Architecture a;
  a.set_space(space);
  a.set_canonical(canonical);
  return a;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

void ExpandIntervalFactors(maplex::v1::PredictionColumns* columns) {
  const double lo = columns->lower_factor(), hi = columns->upper_factor();
  columns->clear_lower_factor();
  columns->clear_upper_factor();
  const bool factors = lo > 0 || hi > 0;
  if (!factors || columns->lower_ms_size() != 0 || columns->upper_ms_size() != 0) return;
  const int n = columns->latency_ms_size();
  columns->mutable_lower_ms()->Reserve(n);
  columns->mutable_upper_ms()->Reserve(n);
  double* lower = columns->mutable_lower_ms()->AddNAlreadyReserved(n);
  double* upper = columns->mutable_upper_ms()->AddNAlreadyReserved(n);
  for (int i = 0; i < n; ++i) {
    lower[i] = columns->latency_ms(i) * lo;
    upper[i] = columns->latency_ms(i) * hi;
  }
}

absl::StatusOr<MaplexClient> MaplexClient::Connect(const ClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("server address is empty");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      OpenChannel(options.address, options.security, args);
  if (!channel.ok()) return channel.status();
  return MaplexClient(options, *std::move(channel));
}

MaplexClient::MaplexClient(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      health_(grpc::health::v1::Health::NewStub(channel_)),
      registry_(maplex::v1::DeviceRegistry::NewStub(channel_)),
      ingest_(maplex::v1::Ingest::NewStub(channel_)),
      predictor_(maplex::v1::Predictor::NewStub(channel_)),
      models_(maplex::v1::Models::NewStub(channel_)),
      tokens_(maplex::v1::Tokens::NewStub(channel_)) {}

// Runs one unary call with the client's deadline; its response or status.
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> MaplexClient::Call(Stub& stub,
                                            grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                         const Request&, Response*),
                                            const Request& request) const {
  Response response;
  auto context = Context();
  grpc::Status s = (stub.*method)(context.get(), request, &response);
  if (!s.ok()) return FromGrpcStatus(s);
  return response;
}

std::unique_ptr<grpc::ClientContext> MaplexClient::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options_.timeout));
  return context;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> MaplexClient::Health(
    const std::string& service) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  absl::StatusOr<grpc::health::v1::HealthCheckResponse> response =
      Call(*health_, &grpc::health::v1::Health::Stub::Check, request);
  if (!response.ok()) return response.status();
  return response->status();
}

absl::StatusOr<maplex::v1::RegisterDeviceResponse> MaplexClient::RegisterDevice(
    const maplex::v1::RegisterDeviceRequest& request) {
  return Call(*registry_, &maplex::v1::DeviceRegistry::Stub::RegisterDevice, request);
}

absl::StatusOr<maplex::v1::Device> MaplexClient::GetDevice(const std::string& id) {
  maplex::v1::GetDeviceRequest request;
  request.set_id(id);
  return Call(*registry_, &maplex::v1::DeviceRegistry::Stub::GetDevice, request);
}

absl::StatusOr<std::vector<maplex::v1::Device>> MaplexClient::ListDevices(
    maplex::v1::ListDevicesRequest request) {
  std::vector<maplex::v1::Device> devices;
  do {
    absl::StatusOr<maplex::v1::ListDevicesResponse> response =
        Call(*registry_, &maplex::v1::DeviceRegistry::Stub::ListDevices, request);
    if (!response.ok()) return response.status();
    for (auto& d : *response->mutable_devices()) devices.push_back(std::move(d));
    request.set_page_token(response->next_page_token());
  } while (!request.page_token().empty());
  return devices;
}

absl::StatusOr<maplex::v1::Device> MaplexClient::UpdateDevice(
    const maplex::v1::UpdateDeviceRequest& request) {
  return Call(*registry_, &maplex::v1::DeviceRegistry::Stub::UpdateDevice, request);
}

absl::StatusOr<maplex::v1::Device> MaplexClient::RetireDevice(const std::string& id) {
  maplex::v1::RetireDeviceRequest request;
  request.set_id(id);
  return Call(*registry_, &maplex::v1::DeviceRegistry::Stub::RetireDevice, request);
}

absl::StatusOr<std::vector<maplex::v1::MeasuredLatency>> MaplexClient::ListMeasurements(
    const std::string& device_id, const std::string& space, int page_size) {
  maplex::v1::ListMeasurementsRequest request;
  request.set_device_id(device_id);
  request.set_space(space);
  request.set_page_size(page_size);
  std::vector<maplex::v1::MeasuredLatency> latencies;
  do {
    absl::StatusOr<maplex::v1::ListMeasurementsResponse> response =
        Call(*registry_, &maplex::v1::DeviceRegistry::Stub::ListMeasurements, request);
    if (!response.ok()) return response.status();
    latencies.insert(latencies.end(), response->latencies().begin(), response->latencies().end());
    request.set_page_token(response->next_page_token());
  } while (!request.page_token().empty());
  return latencies;
}

namespace {

maplex::v1::PredictRequest MakePredictRequest(const std::string& device_id,
                                              const std::vector<maplex::v1::Architecture>& archs,
                                              uint64_t model_version, bool columnar) {
  maplex::v1::PredictRequest request;
  request.set_device_id(device_id);
  request.set_model_version(model_version);
  request.set_columnar(columnar);
  request.mutable_archs()->Reserve(static_cast<int>(archs.size()));
  for (const auto& a : archs) *request.add_archs() = a;
  return request;
}

}  // namespace

absl::StatusOr<maplex::v1::PredictResponse> MaplexClient::Predict(
    const std::string& device_id, const std::vector<maplex::v1::Architecture>& archs,
    uint64_t model_version) {
  return Call(*predictor_, &maplex::v1::Predictor::Stub::Predict,
              MakePredictRequest(device_id, archs, model_version, /*columnar=*/false));
}

absl::StatusOr<maplex::v1::PredictResponse> MaplexClient::PredictColumnar(
    const std::string& device_id, const std::vector<maplex::v1::Architecture>& archs,
    uint64_t model_version) {
  return Call(*predictor_, &maplex::v1::Predictor::Stub::Predict,
              MakePredictRequest(device_id, archs, model_version, /*columnar=*/true));
}

maplex::v1::PredictRequest MaplexClient::PredictBatchRequest(
    const std::string& device_id, const maplex::v1::ArchitectureBatch& batch,
    uint64_t model_version) const {
  maplex::v1::PredictRequest request;
  request.set_device_id(device_id);
  request.set_model_version(model_version);
  request.set_columnar(true);
  request.set_interval_factors(true);
  maplex::v1::ArchitectureBatch* sent = request.mutable_arch_batch();
  const bool one_byte_each = batch.bits_per_choice() == 0 || batch.bits_per_choice() == 8;
  if (one_byte_each && batch.choices().size() >= options_.pack_batches_from_bytes &&
      core::FitsChoiceNibbles(batch.choices())) {
    sent->set_space(batch.space());
    sent->set_choices(core::PackChoiceNibbles(batch.choices()));
    sent->set_bits_per_choice(4);
  } else {
    *sent = batch;
  }
  return request;
}

absl::StatusOr<maplex::v1::PredictResponse> MaplexClient::PredictBatch(
    const std::string& device_id, const maplex::v1::ArchitectureBatch& batch,
    uint64_t model_version) {
  absl::StatusOr<maplex::v1::PredictResponse> response =
      Call(*predictor_, &maplex::v1::Predictor::Stub::Predict,
           PredictBatchRequest(device_id, batch, model_version));
  if (response.ok()) ExpandIntervalFactors(response->mutable_columns());
  return response;
}

absl::StatusOr<std::vector<maplex::v1::ModelInfo>> MaplexClient::ListModels(int page_size) {
  std::vector<maplex::v1::ModelInfo> models;
  maplex::v1::ListModelsRequest request;
  request.set_page_size(page_size);
  do {
    absl::StatusOr<maplex::v1::ListModelsResponse> response =
        Call(*models_, &maplex::v1::Models::Stub::ListModels, request);
    if (!response.ok()) return response.status();
    models.insert(models.end(), response->models().begin(), response->models().end());
    request.set_page_token(response->next_page_token());
  } while (!request.page_token().empty());
  return models;
}

absl::StatusOr<maplex::v1::ModelInfo> MaplexClient::GetModel(uint64_t version) {
  maplex::v1::GetModelRequest request;
  request.set_version(version);
  return Call(*models_, &maplex::v1::Models::Stub::GetModel, request);
}

absl::StatusOr<maplex::v1::ModelInfo> MaplexClient::Retrain() {
  return Call(*models_, &maplex::v1::Models::Stub::Retrain, maplex::v1::RetrainRequest());
}

absl::StatusOr<maplex::v1::ReportDescriptorResponse> MaplexClient::ReportDescriptor(
    const maplex::v1::ReportDescriptorRequest& request) {
  return Call(*ingest_, &maplex::v1::Ingest::Stub::ReportDescriptor, request);
}

absl::StatusOr<maplex::v1::MeasurementAck> MaplexClient::SendMeasurements(
    const std::vector<maplex::v1::Measurement>& measurements, int batch_size,
    const std::function<void(const maplex::v1::MeasurementAck&)>& on_ack, bool replace) {
  return SendBatches(
      measurements.size(), batch_size,
      [&](size_t i, maplex::v1::MeasurementBatch* batch) {
        *batch->add_measurements() = measurements[i];
      },
      on_ack, replace);
}

absl::StatusOr<maplex::v1::MeasurementAck> MaplexClient::SendMeasurements(
    std::vector<maplex::v1::Measurement>&& measurements, int batch_size,
    const std::function<void(const maplex::v1::MeasurementAck&)>& on_ack, bool replace) {
  return SendBatches(
      measurements.size(), batch_size,
      [&](size_t i, maplex::v1::MeasurementBatch* batch) {
        *batch->add_measurements() = std::move(measurements[i]);
      },
      on_ack, replace);
}

absl::StatusOr<std::vector<maplex::v1::MeasurementAck>> MaplexClient::SendMeasurementGroups(
    std::vector<std::vector<maplex::v1::Measurement>>&& groups, int batch_size, bool replace) {
  // starts[g]: the index of group g's first measurement in the concatenation.
  std::vector<size_t> starts(groups.size() + 1, 0);
  for (size_t g = 0; g < groups.size(); ++g) starts[g + 1] = starts[g] + groups[g].size();
  const auto group_of = [&](size_t i) {
    return static_cast<size_t>(std::upper_bound(starts.begin(), starts.end(), i) - starts.begin()) -
           1;
  };
  // The group of each batch sent, in order: acks come back in that order.
  std::deque<size_t> batch_groups;
  std::vector<maplex::v1::MeasurementAck> acks(groups.size());
  absl::StatusOr<maplex::v1::MeasurementAck> total = SendBatches(
      starts.back(), batch_size,
      [&](size_t i, maplex::v1::MeasurementBatch* batch) {
        const size_t g = group_of(i);
        if (batch->measurements_size() == 0) batch_groups.push_back(g);
        *batch->add_measurements() = std::move(groups[g][i - starts[g]]);
      },
      [&](const maplex::v1::MeasurementAck& ack) {
        maplex::v1::MeasurementAck& sum = acks[batch_groups.front()];
        batch_groups.pop_front();
        sum.set_inserted(sum.inserted() + ack.inserted());
        sum.set_already_stored(sum.already_stored() + ack.already_stored());
        sum.mutable_committed_ids()->MergeFrom(ack.committed_ids());
      },
      replace, [&](size_t i) { return starts[group_of(i) + 1]; });
  if (!total.ok()) return total.status();
  return acks;
}

absl::StatusOr<maplex::v1::MeasurementAck> MaplexClient::SendBatches(
    size_t count, int batch_size,
    const std::function<void(size_t, maplex::v1::MeasurementBatch*)>& add,
    const std::function<void(const maplex::v1::MeasurementAck&)>& on_ack, bool replace,
    const std::function<size_t(size_t)>& limit) {
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size must be at least 1");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options_.stream_timeout));
  auto stream = ingest_->StreamMeasurements(&context);
  maplex::v1::MeasurementAck total;
  size_t sent = 0;
  int outstanding = 0;
  // Keep a few batches in flight so the network and the server's commits overlap.
  constexpr int kWindow = 4;
  auto read_ack = [&]() -> bool {
    maplex::v1::MeasurementAck ack;
    if (!stream->Read(&ack)) return false;
    --outstanding;
    total.set_inserted(total.inserted() + ack.inserted());
    total.set_already_stored(total.already_stored() + ack.already_stored());
    if (on_ack) on_ack(ack);
    // Hand the id strings over instead of allocating a copy of each.
    google::protobuf::RepeatedPtrField<std::string>* ids = ack.mutable_committed_ids();
    std::vector<std::string*> taken(ids->size());
    ids->ExtractSubrange(0, ids->size(), taken.data());
    for (std::string* id : taken) total.mutable_committed_ids()->AddAllocated(id);
    return true;
  };
  bool broken = false;
  while (sent < count && !broken) {
    maplex::v1::MeasurementBatch batch;
    batch.set_replace(replace);
    size_t end = std::min(count, sent + static_cast<size_t>(batch_size));
    if (limit) end = std::min(end, limit(sent));
    batch.mutable_measurements()->Reserve(static_cast<int>(end - sent));
    for (size_t i = sent; i < end; ++i) add(i, &batch);
    if (!stream->Write(batch)) {
      broken = true;
      break;
    }
    sent = end;
    ++outstanding;
    while (outstanding >= kWindow && !broken) broken = !read_ack();
  }
  if (!broken) stream->WritesDone();
  while (outstanding > 0 && read_ack()) {
  }
  grpc::Status s = stream->Finish();
  if (!s.ok()) return FromGrpcStatus(s);
  if (outstanding > 0) {
    return absl::UnavailableError(absl::StrCat(outstanding, " batches were not acknowledged"));
  }
  return total;
}

absl::StatusOr<maplex::v1::CreateTokenResponse> MaplexClient::CreateToken(
    const maplex::v1::CreateTokenRequest& request) {
  return Call(*tokens_, &maplex::v1::Tokens::Stub::CreateToken, request);
}

absl::StatusOr<std::vector<maplex::v1::Token>> MaplexClient::ListTokens() {
  absl::StatusOr<maplex::v1::ListTokensResponse> response =
      Call(*tokens_, &maplex::v1::Tokens::Stub::ListTokens, maplex::v1::ListTokensRequest());
  if (!response.ok()) return response.status();
  return std::vector<maplex::v1::Token>(response->tokens().begin(), response->tokens().end());
}

absl::StatusOr<maplex::v1::Token> MaplexClient::RevokeToken(int64_t id) {
  maplex::v1::RevokeTokenRequest request;
  request.set_id(id);
  return Call(*tokens_, &maplex::v1::Tokens::Stub::RevokeToken, request);
}

}  // namespace maplex::client

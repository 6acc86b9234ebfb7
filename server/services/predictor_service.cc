#include "server/services/predictor_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
#include "server/rpc_status.h"
#include "server/validation.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

namespace {

// The response's packed columns, filled in order without zeroing them first (reserved once,
// then written in place: one pass over the 2.4 MB of a 100,000-architecture answer). Without
// interval columns (the request's interval_factors), the latency column alone: 0.8 MB.
class PredictionColumnsSink {
 public:
  PredictionColumnsSink(v1::PredictionColumns* columns, int n, bool interval_columns) {
    columns->mutable_latency_ms()->Reserve(n);
    latency_ = columns->mutable_latency_ms()->AddNAlreadyReserved(n);
    if (!interval_columns) return;
    columns->mutable_lower_ms()->Reserve(n);
    columns->mutable_upper_ms()->Reserve(n);
    lower_ = columns->mutable_lower_ms()->AddNAlreadyReserved(n);
    upper_ = columns->mutable_upper_ms()->AddNAlreadyReserved(n);
  }
  void Append(absl::Span<const core::LatencyPrediction> chunk) {
    if (lower_ == nullptr) {
      for (const core::LatencyPrediction& p : chunk) *latency_++ = p.latency_ms;
      return;
    }
    for (const core::LatencyPrediction& p : chunk) {
      *latency_++ = p.latency_ms;
      *lower_++ = p.lower_ms;
      *upper_++ = p.upper_ms;
    }
  }

 private:
  double* latency_;
  double* lower_ = nullptr;
  double* upper_ = nullptr;
};

// Architectures decoded (or copied) and predicted this many at a time: the buffers stay in
// the cache, and no vector of the whole batch is built (a 100,000-architecture batch was 4 MB
// of Architecture values plus 2.4 MB of predictions, each faulted in afresh per request).
constexpr size_t kPredictChunk = 1024;

}  // namespace

absl::Status PredictorService::Answer(const v1::PredictRequest& request,
                                      v1::PredictResponse* response) const {
  // A compact batch of another space stays encoded: decoded a chunk at a time below.
  absl::StatusOr<PredictArchitectures> asked =
      ValidatePredictRequest(request, limits_, /*decode_batch=*/false);
  if (!asked.ok()) return asked.status();
  if (retired_->Contains(request.device_id())) {
    return absl::FailedPreconditionError(
        absl::StrCat("device_id: device \"", request.device_id(), "\" is retired"));
  }
  std::shared_ptr<const ServedModel> served = slot_->Get();
  if (served == nullptr) {
    return absl::UnavailableError(
        "no model is trained yet: import data or stream measurements first");
  }
  if (request.model_version() != 0 && request.model_version() != served->info.version()) {
    if (kept_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("model_version: version ", request.model_version(),
                       " is not served by this replica; serving version ", served->info.version(),
                       " (ask for 0 to take it, or ask the primary)"));
    }
    // A version the primary still keeps answers as it did when it was served.
    absl::StatusOr<std::shared_ptr<const ServedModel>> kept = kept_->Get(request.model_version());
    if (!kept.ok()) return kept.status();
    served = *std::move(kept);
  }
  // The model of the request's space answers: NB201's tabulated model, or the function
  // model of any other space.
  const bool nb201 = asked->space == &core::Nb201Space::Get();
  const ServedFunctionModel* function = nb201 ? nullptr : served->FunctionModelOf(*asked->space);
  if (nb201 ? served->model == nullptr : function == nullptr) {
    std::string why = "no reference device in that space yet";
    for (const v1::SpaceModelInfo& s : served->info.spaces()) {
      if (s.space() == std::string(asked->space->name()) && !s.reason().empty()) why = s.reason();
    }
    return absl::FailedPreconditionError(
        absl::StrCat(request.has_arch_batch() ? "arch_batch" : "archs", ": model version ",
                     served->info.version(), " serves no model of space ",
                     std::string(asked->space->name()), " (", why, ")"));
  }
  if (!nb201) {
    if (function->model->DeviceIndex(request.device_id()) < 0) {
      return DeviceNotInSpace(request.device_id(), *asked->space, served->info.version());
    }
    response->set_model_version(served->info.version());
    response->set_method(served->info.method());
    absl::Status s = PredictFunction(*function->model, request.device_id(), *asked,
                                     request.columnar(), request.interval_factors(), response);
    if (!s.ok()) response->Clear();
    return s;
  }
  std::vector<core::LatencyPrediction> predicted(asked->size());
  absl::Status s =
      served->model->Predict(request.device_id(), asked->nb201_indices, absl::MakeSpan(predicted));
  if (absl::IsNotFound(s) && store_ == nullptr) {
    return absl::NotFoundError(absl::StrCat("device_id: model version ", served->info.version(),
                                            " has no device \"", request.device_id(), "\""));
  }
  if (absl::IsNotFound(s)) {
    // Say why: unknown device, or known but without measurements in this model yet.
    absl::StatusOr<v1::Device> device = store_->GetDevice(request.device_id());
    if (!device.ok()) {
      return absl::NotFoundError(
          absl::StrCat("device_id: no device \"", request.device_id(), "\" is registered"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "device_id: device \"", request.device_id(), "\" has ", device->measurement_count(),
        " measurements but model version ", served->info.version(),
        " was trained before them; a newer model follows shortly"));
  }
  if (!s.ok()) return s;
  response->set_model_version(served->info.version());
  response->set_method(served->info.method());
  const int n = static_cast<int>(predicted.size());
  if (request.columnar()) {
    PredictionColumnsSink columns(response->mutable_columns(), n, /*interval_columns=*/true);
    columns.Append(predicted);
    return absl::OkStatus();
  }
  response->mutable_predictions()->Reserve(n);
  for (int i = 0; i < n; ++i) {
    v1::Prediction* p = response->add_predictions();
    p->set_arch_index(asked->nb201_indices[i]);
    p->set_latency_ms(predicted[i].latency_ms);
    p->set_lower_ms(predicted[i].lower_ms);
    p->set_upper_ms(predicted[i].upper_ms);
  }
  return absl::OkStatus();
}

absl::Status PredictorService::PredictFunction(const core::FunctionModel& model,
                                               const std::string& device,
                                               const PredictArchitectures& asked, bool columnar,
                                               bool interval_factors,
                                               v1::PredictResponse* response) {
  const size_t n = asked.size();
  std::optional<PredictionColumnsSink> columns;
  if (columnar) {
    columns.emplace(response->mutable_columns(), static_cast<int>(n), !interval_factors);
    if (interval_factors) {
      const int index = model.DeviceIndex(device);
      if (index < 0) return absl::NotFoundError(absl::StrCat("no device \"", device, "\""));
      const auto [lower, upper] = model.IntervalFactors(index);
      response->mutable_columns()->set_lower_factor(lower);
      response->mutable_columns()->set_upper_factor(upper);
    }
  } else {
    response->mutable_predictions()->Reserve(static_cast<int>(n));
  }
  std::vector<core::Architecture> buffer;
  std::vector<uint8_t> codes;  // a packed batch's chunk, unpacked (22 KB for FBNet)
  if (asked.encoded.count > 0) buffer.resize(std::min(n, kPredictChunk));
  std::vector<core::LatencyPrediction> predicted(std::min(n, kPredictChunk));
  for (size_t start = 0; start < n; start += kPredictChunk) {
    const size_t m = std::min(kPredictChunk, n - start);
    absl::Span<const core::Architecture> archs;
    if (asked.encoded.count > 0) {
      asked.encoded.space->FromValidatedCodes(asked.encoded.Codes(start, m, &codes),
                                              absl::MakeSpan(buffer.data(), m));
      archs = absl::MakeConstSpan(buffer.data(), m);
    } else {
      archs = absl::MakeConstSpan(asked.archs).subspan(start, m);
    }
    const absl::Span<core::LatencyPrediction> out = absl::MakeSpan(predicted.data(), m);
    if (absl::Status s = model.Predict(device, archs, out); !s.ok()) return s;
    if (columns) {
      columns->Append(out);
      continue;
    }
    for (const core::LatencyPrediction& p : out) {
      v1::Prediction* row = response->add_predictions();
      row->set_latency_ms(p.latency_ms);
      row->set_lower_ms(p.lower_ms);
      row->set_upper_ms(p.upper_ms);
    }
  }
  return absl::OkStatus();
}

absl::Status PredictorService::DeviceNotInSpace(const std::string& device_id,
                                                const core::ArchitectureSpace& space,
                                                uint64_t version) const {
  const std::string space_name(space.name());
  if (store_ != nullptr) {
    // Known and measured in the space after this version was trained: a newer one follows.
    absl::StatusOr<v1::Device> device = store_->GetDevice(device_id);
    if (device.ok()) {
      auto measured = device->measurement_count_by_space().find(space_name);
      if (measured != device->measurement_count_by_space().end() && measured->second > 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("device_id: device \"", device_id, "\" has ", measured->second,
                         " measurements in space ", space_name, " but model version ", version,
                         " was trained before them; a newer model follows shortly"));
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("device_id: device \"", device_id,
                                          "\" is not known in space ", space_name,
                                          " (model version ", version, ")"));
}

Status PredictorService::Predict(ServerContext* context, const v1::PredictRequest* request,
                                 v1::PredictResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.Predictor/Predict");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(Answer(*request, response));
}

Status PredictorService::PredictStream(
    ServerContext* context,
    grpc::ServerReaderWriter<v1::PredictResponse, v1::PredictRequest>* stream) {
  absl::StatusOr<Caller> caller =
      authorizer_->Authorize(*context, "/maplex.v1.Predictor/PredictStream");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  v1::PredictRequest request;
  while (stream->Read(&request)) {
    v1::PredictResponse response;
    if (absl::Status s = Answer(request, &response); !s.ok()) return ToGrpcStatus(s);
    if (!stream->Write(response)) break;
  }
  return Status::OK;
}

}  // namespace maplex::server

#include "server/services/registry_service.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/rpc_status.h"
#include "server/validation.h"

namespace maplex::server {

using grpc::ServerContext;
using grpc::Status;

Status RegistryService::RegisterDevice(ServerContext* context,
                                       const v1::RegisterDeviceRequest* request,
                                       v1::RegisterDeviceResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.DeviceRegistry/RegisterDevice");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // An agent enrolls the device its token is bound to, under that id.
  if (absl::Status s = Authorizer::CheckDevice(*caller, request->id(), "id"); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (absl::Status s = ValidateRegisterDevice(*request, limits_); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<Store::Registration> r = store_->RegisterDevice(*request);
  if (!r.ok()) return ToGrpcStatus(r.status());
  // The store answers a registration of a known (fingerprint, config) with the device it
  // has. Under another id than the one asked for, that is two machines the fingerprint
  // cannot tell apart, or a renamed device: an error, never a silent substitution (the
  // caller would send its measurements for a device it did not ask for).
  if (!r->created && !request->id().empty() && request->id() != r->device.id()) {
    return ToGrpcStatus(absl::AlreadyExistsError(
        absl::StrCat("id: \"", request->id(), "\" asked for, but this hardware (fingerprint \"",
                     request->hardware_fingerprint(),
                     "\") and configuration are registered as device \"", r->device.id(), "\"")));
  }
  if (r->device.retired()) {
    return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
        "id: device \"", r->device.id(), "\" with this hardware and configuration is retired")));
  }
  *response->mutable_device() = std::move(r->device);
  response->set_created(r->created);
  return Status::OK;
}

Status RegistryService::GetDevice(ServerContext* context, const v1::GetDeviceRequest* request,
                                  v1::Device* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.DeviceRegistry/GetDevice");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status s = ValidateIdentifier(request->id(), "id", limits_); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<v1::Device> d = store_->GetDevice(request->id());
  if (!d.ok()) return ToGrpcStatus(d.status());
  *response = *std::move(d);
  return Status::OK;
}

Status RegistryService::ListDevices(ServerContext* context, const v1::ListDevicesRequest* request,
                                    v1::ListDevicesResponse* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.DeviceRegistry/ListDevices");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  int page_size = request->page_size() == 0 ? limits_.default_list_page_size : request->page_size();
  if (page_size < 0 || page_size > limits_.max_list_page_size) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "page_size: ", request->page_size(), " is outside 0..", limits_.max_list_page_size)));
  }
  // The page token is the id of the last device of the previous page.
  if (!request->page_token().empty()) {
    if (absl::Status s = ValidateIdentifier(request->page_token(), "page_token", limits_); !s.ok()) {
      return ToGrpcStatus(s);
    }
  }
  if (absl::Status s = ValidateListDevicesFilter(*request, limits_); !s.ok()) {
    return ToGrpcStatus(s);
  }
  DeviceFilter filter;
  filter.category = request->category();
  filter.labels = std::map<std::string, std::string>(request->labels().begin(),
                                                     request->labels().end());
  filter.include_retired = request->include_retired();
  // One more than asked tells whether another page follows.
  absl::StatusOr<std::vector<v1::Device>> devices =
      store_->ListDevices(filter, request->page_token(), page_size + 1);
  if (!devices.ok()) return ToGrpcStatus(devices.status());
  bool more = static_cast<int>(devices->size()) > page_size;
  if (more) devices->resize(page_size);
  for (v1::Device& d : *devices) *response->add_devices() = std::move(d);
  if (more) response->set_next_page_token(response->devices(page_size - 1).id());
  return Status::OK;
}

Status RegistryService::UpdateDevice(ServerContext* context,
                                     const v1::UpdateDeviceRequest* request, v1::Device* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.DeviceRegistry/UpdateDevice");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status s = ValidateUpdateDevice(*request, limits_); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<v1::Device> d = store_->UpdateLabels(
      request->id(),
      std::map<std::string, std::string>(request->set_labels().begin(),
                                         request->set_labels().end()),
      std::vector<std::string>(request->remove_labels().begin(), request->remove_labels().end()));
  if (!d.ok()) return ToGrpcStatus(d.status());
  *response = *std::move(d);
  return Status::OK;
}

Status RegistryService::RetireDevice(ServerContext* context,
                                     const v1::RetireDeviceRequest* request, v1::Device* response) {
  absl::StatusOr<Caller> caller = authorizer_->Authorize(*context, "/maplex.v1.DeviceRegistry/RetireDevice");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status s = ValidateIdentifier(request->id(), "id", limits_); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<v1::Device> d = store_->RetireDevice(request->id());
  if (!d.ok()) return ToGrpcStatus(d.status());
  retired_->Add(request->id());
  trainer_->NotifyNewData();  // the next model leaves the device out
  *response = *std::move(d);
  return Status::OK;
}

Status RegistryService::ListMeasurements(ServerContext* context,
                                         const v1::ListMeasurementsRequest* request,
                                         v1::ListMeasurementsResponse* response) {
  absl::StatusOr<Caller> caller =
      authorizer_->Authorize(*context, "/maplex.v1.DeviceRegistry/ListMeasurements");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status s = ValidateIdentifier(request->device_id(), "device_id", limits_); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<std::vector<std::pair<int32_t, double>>> latencies =
      store_->DeviceLatencies(request->device_id());
  if (!latencies.ok()) return ToGrpcStatus(latencies.status());
  response->mutable_latencies()->Reserve(static_cast<int>(latencies->size()));
  for (const auto& [arch, ms] : *latencies) {
    v1::MeasuredLatency* m = response->add_latencies();
    m->set_arch_index(arch);
    m->set_latency_ms(ms);
  }
  return Status::OK;
}

}  // namespace maplex::server

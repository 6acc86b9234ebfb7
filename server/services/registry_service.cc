#include "server/services/registry_service.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/arch/nb201_space.h"
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
  absl::StatusOr<const core::ArchitectureSpace*> space =
      ValidateSpace(request->space(), "space", limits_);
  if (!space.ok()) return ToGrpcStatus(space.status());
  const int max_page = limits_.max_measurements_page_size;
  if (request->page_size() < 0 || request->page_size() > max_page) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("page_size: ", request->page_size(), " is outside 0..", max_page)));
  }
  const int page_size = request->page_size() == 0 ? max_page : request->page_size();
  const std::string& token = request->page_token();
  if (static_cast<int>(token.size()) > limits_.max_arch_string_length) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("page_token: ", token.size(),
                                                                " bytes, more than the limit of ",
                                                                limits_.max_arch_string_length)));
  }
  auto add = [response](const core::Architecture& arch, int32_t index, double ms) {
    v1::MeasuredLatency* m = response->add_latencies();
    m->set_arch_index(index);
    m->set_latency_ms(ms);
    m->mutable_arch()->set_space(std::string(SpaceName(*arch.space())));
    m->mutable_arch()->set_canonical(arch.ToString());
  };
  if (*space == &core::Nb201Space::Get()) {
    // By official index, as before canonical strings existed: the whole space fits one
    // page by default; a token is the last index sent.
    const core::Nb201Space& nb201 = core::Nb201Space::Get();
    int32_t after = -1;
    if (!token.empty() && (!absl::SimpleAtoi(token, &after) || after < 0)) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("page_token: \"", token, "\" is not a page token of an nb201 listing")));
    }
    absl::StatusOr<std::vector<ArchitectureLatency>> latencies =
        store_->DeviceLatencies(request->device_id(), nb201);
    if (!latencies.ok()) return ToGrpcStatus(latencies.status());
    std::vector<std::pair<int32_t, size_t>> by_index;  // (index, position in latencies)
    by_index.reserve(latencies->size());
    for (size_t i = 0; i < latencies->size(); ++i) {
      const int32_t index = nb201.IndexOf((*latencies)[i].first);
      if (index > after) by_index.emplace_back(index, i);
    }
    std::sort(by_index.begin(), by_index.end());
    const size_t n = std::min(by_index.size(), static_cast<size_t>(page_size));
    response->mutable_latencies()->Reserve(static_cast<int>(n));
    for (size_t i = 0; i < n; ++i) {
      const ArchitectureLatency& l = (*latencies)[by_index[i].second];
      add(l.first, by_index[i].first, l.second);
    }
    if (n < by_index.size()) response->set_next_page_token(absl::StrCat(by_index[n - 1].first));
    return Status::OK;
  }
  // Other spaces by canonical string; a token is the last string sent.
  absl::StatusOr<std::vector<ArchitectureLatency>> latencies =
      store_->DeviceLatencies(request->device_id(), **space, token, page_size + 1);
  if (!latencies.ok()) return ToGrpcStatus(latencies.status());
  const bool more = static_cast<int>(latencies->size()) > page_size;
  if (more) latencies->pop_back();
  response->mutable_latencies()->Reserve(static_cast<int>(latencies->size()));
  for (const auto& [arch, ms] : *latencies) add(arch, 0, ms);
  if (more) response->set_next_page_token(latencies->back().first.ToString());
  return Status::OK;
}

}  // namespace maplex::server

// maplex.v1.DeviceRegistry: validates, then reads or writes the store.
#ifndef MAPLEX_SERVER_SERVICES_REGISTRY_SERVICE_H_
#define MAPLEX_SERVER_SERVICES_REGISTRY_SERVICE_H_

#include "maplex/v1/registry.grpc.pb.h"
#include "server/auth/authorizer.h"
#include "server/limits.h"
#include "server/services/retired_devices.h"
#include "server/store/store.h"
#include "server/trainer.h"

namespace maplex::server {

class RegistryService final : public maplex::v1::DeviceRegistry::Service {
 public:
  RegistryService(const Authorizer* authorizer, Store* store, RetiredDevices* retired,
                  Trainer* trainer, const Limits& limits)
      : authorizer_(authorizer), store_(store), retired_(retired), trainer_(trainer),
        limits_(limits) {}

  grpc::Status RegisterDevice(grpc::ServerContext* context,
                              const maplex::v1::RegisterDeviceRequest* request,
                              maplex::v1::RegisterDeviceResponse* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context, const maplex::v1::GetDeviceRequest* request,
                         maplex::v1::Device* response) override;
  grpc::Status ListDevices(grpc::ServerContext* context,
                           const maplex::v1::ListDevicesRequest* request,
                           maplex::v1::ListDevicesResponse* response) override;
  grpc::Status UpdateDevice(grpc::ServerContext* context,
                            const maplex::v1::UpdateDeviceRequest* request,
                            maplex::v1::Device* response) override;
  grpc::Status RetireDevice(grpc::ServerContext* context,
                            const maplex::v1::RetireDeviceRequest* request,
                            maplex::v1::Device* response) override;
  grpc::Status ListMeasurements(grpc::ServerContext* context,
                                const maplex::v1::ListMeasurementsRequest* request,
                                maplex::v1::ListMeasurementsResponse* response) override;

 private:
  const Authorizer* const authorizer_;
  Store* const store_;
  RetiredDevices* const retired_;
  Trainer* const trainer_;
  const Limits limits_;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_REGISTRY_SERVICE_H_

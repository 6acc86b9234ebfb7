// Conversions between the wire form of a device's specification (maplex.v1.HardwareSpec
// plus its DeviceConfig) and core::HardwareSpec. Unset optional fields stay unknown.
#ifndef MAPLEX_CORE_HARDWARE_SPEC_PROTO_H_
#define MAPLEX_CORE_HARDWARE_SPEC_PROTO_H_

#include "core/hardware/descriptor.h"
#include "maplex/v1/common.pb.h"

namespace maplex::core {

HardwareSpec SpecFromProto(const maplex::v1::HardwareSpec& spec,
                           const maplex::v1::DeviceConfig& config);

// Fills `spec` and `config` (config.runtime is left to the caller).
void SpecToProto(const HardwareSpec& in, maplex::v1::HardwareSpec* spec,
                 maplex::v1::DeviceConfig* config);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_HARDWARE_SPEC_PROTO_H_

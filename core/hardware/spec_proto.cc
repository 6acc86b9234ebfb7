#include "core/hardware/spec_proto.h"

namespace maplex::core {
namespace {

// The optional numeric fields, paired: core member <-> proto has/get/set.
template <typename F>
void ForEachNumeric(F&& f) {
  using P = maplex::v1::HardwareSpec;
  f(&HardwareSpec::compute_units, &P::has_compute_units, &P::compute_units, &P::set_compute_units);
  f(&HardwareSpec::threads, &P::has_threads, &P::threads, &P::set_threads);
  f(&HardwareSpec::base_clock_ghz, &P::has_base_clock_ghz, &P::base_clock_ghz,
    &P::set_base_clock_ghz);
  f(&HardwareSpec::boost_clock_ghz, &P::has_boost_clock_ghz, &P::boost_clock_ghz,
    &P::set_boost_clock_ghz);
  f(&HardwareSpec::l2_mib, &P::has_l2_mib, &P::l2_mib, &P::set_l2_mib);
  f(&HardwareSpec::llc_mib, &P::has_llc_mib, &P::llc_mib, &P::set_llc_mib);
  f(&HardwareSpec::memory_gib, &P::has_memory_gib, &P::memory_gib, &P::set_memory_gib);
  f(&HardwareSpec::memory_bandwidth_gbs, &P::has_memory_bandwidth_gbs, &P::memory_bandwidth_gbs,
    &P::set_memory_bandwidth_gbs);
  f(&HardwareSpec::tdp_w, &P::has_tdp_w, &P::tdp_w, &P::set_tdp_w);
}

}  // namespace

HardwareSpec SpecFromProto(const maplex::v1::HardwareSpec& spec,
                           const maplex::v1::DeviceConfig& config) {
  HardwareSpec out;
  out.category = ParseDeviceCategory(spec.category());
  out.isa = spec.isa();
  ForEachNumeric([&](auto member, auto has, auto get, auto) {
    if ((spec.*has)()) out.*member = (spec.*get)();
  });
  out.batch_size = config.batch_size();
  out.precision = config.precision();
  out.runtime_threads = config.threads();
  return out;
}

void SpecToProto(const HardwareSpec& in, maplex::v1::HardwareSpec* spec,
                 maplex::v1::DeviceConfig* config) {
  spec->Clear();
  if (in.category != DeviceCategory::kUnknown) spec->set_category(DeviceCategoryName(in.category));
  spec->set_isa(in.isa);
  ForEachNumeric([&](auto member, auto, auto, auto set) {
    if ((in.*member).has_value()) (spec->*set)(*(in.*member));
  });
  config->set_precision(in.precision);
  config->set_batch_size(in.batch_size);
  config->set_threads(in.runtime_threads);
}

}  // namespace maplex::core

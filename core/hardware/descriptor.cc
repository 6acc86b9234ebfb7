#include "core/hardware/descriptor.h"

namespace maplex::core {
namespace {

struct CategoryName {
  DeviceCategory category;
  const char* name;
};
constexpr CategoryName kCategoryNames[] = {
    {DeviceCategory::kUnknown, "unknown"},
    {DeviceCategory::kDesktopGpu, "desktop_gpu"},
    {DeviceCategory::kDesktopCpu, "desktop_cpu"},
    {DeviceCategory::kMobile, "mobile"},
    {DeviceCategory::kEdgeCpu, "edge_cpu"},
    {DeviceCategory::kAsic, "asic"},
    {DeviceCategory::kFpga, "fpga"},
};

}  // namespace

DeviceCategory ParseDeviceCategory(const std::string& name) {
  for (const CategoryName& c : kCategoryNames) {
    if (name == c.name) return c.category;
  }
  return DeviceCategory::kUnknown;
}

const char* DeviceCategoryName(DeviceCategory category) {
  for (const CategoryName& c : kCategoryNames) {
    if (category == c.category) return c.name;
  }
  return "unknown";
}

}  // namespace maplex::core

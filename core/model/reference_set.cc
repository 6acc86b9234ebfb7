#include "core/model/reference_set.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace maplex::core {

absl::Status ValidateDevices(const std::vector<DeviceData>& devices, int32_t space_size) {
  absl::flat_hash_set<std::string> ids;
  for (const DeviceData& d : devices) {
    if (d.device.empty()) return absl::InvalidArgumentError("a device has an empty id");
    if (!ids.insert(d.device).second) {
      return absl::InvalidArgumentError(absl::StrCat("device \"", d.device, "\" given twice"));
    }
    std::vector<bool> seen(space_size, false);
    for (const LatencySample& s : d.samples) {
      if (s.arch_index < 0 || s.arch_index >= space_size) {
        return absl::InvalidArgumentError(absl::StrCat("device \"", d.device, "\": arch index ",
                                                       s.arch_index, " outside [0, ", space_size,
                                                       ")"));
      }
      if (!std::isfinite(s.latency_ms) || s.latency_ms <= 0) {
        return absl::InvalidArgumentError(absl::StrCat("device \"", d.device, "\": latency ",
                                                       s.latency_ms, " ms of arch ", s.arch_index,
                                                       " is not a finite positive number"));
      }
      if (seen[s.arch_index]) {
        return absl::InvalidArgumentError(
            absl::StrCat("device \"", d.device, "\": arch ", s.arch_index, " measured twice"));
      }
      seen[s.arch_index] = true;
    }
  }
  return absl::OkStatus();
}

LogSamples ToLogSamples(const DeviceData& device) {
  LogSamples out;
  for (const LatencySample& s : device.samples) {
    out.archs.push_back(s.arch_index);
    out.log_latency.push_back(std::log(s.latency_ms));
  }
  return out;
}

AffineFit FitAffineToDevice(const ReferenceSet& refs, int device, const LogSamples& samples) {
  const size_t k = samples.archs.size();
  AffineFit fit;
  if (k == 0) return fit;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < k; ++i) {
    const double x = refs.log_latency(samples.archs[i], device), y = samples.log_latency[i];
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  const double n = static_cast<double>(k);
  const double var = sxx - sx * sx / n;
  if (k >= 2 && var > 1e-12) fit.beta = (sxy - sx * sy / n) / var;
  if (fit.beta <= 0) fit.beta = 1;
  fit.alpha = (sy - fit.beta * sx) / n;
  for (size_t i = 0; i < k; ++i) {
    const double r =
        samples.log_latency[i] - fit.alpha - fit.beta * refs.log_latency(samples.archs[i], device);
    fit.rss += r * r;
  }
  return fit;
}

double Coverage(const DeviceData& device, int32_t space_size) {
  return space_size > 0 ? static_cast<double>(device.samples.size()) / space_size : 0;
}

absl::StatusOr<ReferenceSet> BuildReferenceSet(const std::vector<const DeviceData*>& devices,
                                               int32_t space_size) {
  if (devices.empty()) return absl::InvalidArgumentError("no reference device");
  const int n = space_size;
  const int d_count = static_cast<int>(devices.size());
  ReferenceSet refs;
  refs.log_latency.setZero(n, d_count);
  Eigen::MatrixXd known = Eigen::MatrixXd::Zero(n, d_count);
  for (int d = 0; d < d_count; ++d) {
    const DeviceData& dev = *devices[d];
    if (dev.samples.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("reference device \"", dev.device, "\" has no sample"));
    }
    refs.devices.push_back(dev.device);
    refs.hardware.push_back(dev.hardware.empty() ? dev.device : dev.hardware);
    refs.descriptors.push_back(dev.descriptor);
    for (const LatencySample& s : dev.samples) {
      refs.log_latency(s.arch_index, d) = std::log(s.latency_ms);
      known(s.arch_index, d) = 1;
    }
  }
  if (known.minCoeff() == 1) return refs;

  // Imputation: the mean profile over the devices that measured each arch, each device
  // first centred so that fast and slow devices mix; then per device an affine fit of its
  // measured entries to that profile fills its gaps.
  Eigen::VectorXd centre(d_count);
  for (int d = 0; d < d_count; ++d) {
    centre(d) = refs.log_latency.col(d).sum() / known.col(d).sum();
  }
  Eigen::VectorXd profile = Eigen::VectorXd::Zero(n);
  for (int a = 0; a < n; ++a) {
    double sum = 0, count = 0;
    for (int d = 0; d < d_count; ++d) {
      if (known(a, d) == 0) continue;
      sum += refs.log_latency(a, d) - centre(d);
      count += 1;
    }
    profile(a) = count > 0 ? sum / count : 0;
  }
  for (int d = 0; d < d_count; ++d) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;
    for (int a = 0; a < n; ++a) {
      if (known(a, d) == 0) continue;
      const double x = profile(a), y = refs.log_latency(a, d);
      sx += x, sy += y, sxx += x * x, sxy += x * y, m += 1;
    }
    const double var = sxx - sx * sx / m;
    const double beta = var > 1e-12 ? (sxy - sx * sy / m) / var : 0;
    const double alpha = (sy - beta * sx) / m;
    for (int a = 0; a < n; ++a) {
      if (known(a, d) == 0) refs.log_latency(a, d) = alpha + beta * profile(a);
    }
  }
  return refs;
}

}  // namespace maplex::core

// Numeric views of a HardwareDescriptor that a model can compare across devices:
//   - the spec vector: category one-hot, log cores/threads/caches/memory/bandwidth/TDP,
//     clocks, log batch size, precision bits; standardised over the training devices, a
//     missing field imputed with the training mean (0 after standardising) and flagged;
//   - the counter vector (ours, after MAPLE-Edge's counter list): each counter per
//     instruction (instructions itself per second of the reference workload), log-scaled,
//     with a per-counter availability flag;
// and the RBF similarity the MAPLE-X importance weights use.
//
//   DescriptorEncoder enc = DescriptorEncoder::Fit(training_descriptors);
//   EncodedDescriptor a = enc.Encode(target), b = enc.Encode(training[0]);
//   double s = enc.Similarity(a, b);   // in (0, 1]
#ifndef MAPLEX_CORE_HARDWARE_DESCRIPTOR_FEATURES_H_
#define MAPLEX_CORE_HARDWARE_DESCRIPTOR_FEATURES_H_

#include <string>
#include <vector>

#include "core/hardware/descriptor.h"

namespace maplex::core {

// Counters the MAPLE-Edge collection code reads, in vector order.
const std::vector<std::string>& KnownCounterNames();

// Raw (unstandardised) spec values; NaN marks a missing field. Names alongside.
std::vector<double> RawSpecVector(const HardwareSpec& spec);
const std::vector<std::string>& SpecFieldNames();

// Log of counter per instruction (or instructions per second); NaN when unavailable.
std::vector<double> RawCounterVector(const HardwareDescriptor& descriptor);

struct EncodedDescriptor {
  std::vector<double> spec;         // standardised, imputed (0) where missing
  std::vector<bool> spec_known;     // per spec field
  std::vector<double> counters;     // standardised log counters, 0 where unavailable
  std::vector<bool> counter_known;  // per counter
  bool has_spec() const;            // any spec field known
  bool has_counters() const;        // any counter known
};

class DescriptorEncoder {
 public:
  // Means and standard deviations of each field over the descriptors that have it.
  static DescriptorEncoder Fit(const std::vector<HardwareDescriptor>& training);

  EncodedDescriptor Encode(const HardwareDescriptor& descriptor) const;

  // exp(-d^2 / (2 * bandwidth^2 * n)), d^2 the squared distance over the fields both know
  // (specs, and counters when both have them), n their number; 1 for identical devices,
  // and a neutral 0.5 when the two share no known field.
  double Similarity(const EncodedDescriptor& a, const EncodedDescriptor& b,
                    double bandwidth = 0.5) const;

 private:
  std::vector<double> spec_mean_, spec_sd_, counter_mean_, counter_sd_;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_HARDWARE_DESCRIPTOR_FEATURES_H_

// The reference baseline (MAPLE-X.md, "Evaluation protocol"): for each reference device d,
// fit log y = alpha + beta * log L_d(a) by least squares on the target's k samples; predict
// with the device whose fit leaves the smallest residual. A reference device, fit with all
// its own samples, picks itself with alpha = 0, beta = 1 and so reproduces itself.
//
//   BaselineFit fit = FitBaseline(refs, samples);
//   DeviceTable table = BaselineTable(refs, fit, device);
#ifndef MAPLEX_CORE_MODEL_BASELINE_H_
#define MAPLEX_CORE_MODEL_BASELINE_H_

#include "core/model/reference_set.h"
#include "core/model/tabulated_model.h"

namespace maplex::core {

struct BaselineFit {
  int reference = 0;  // column of the chosen device in the ReferenceSet
  double alpha = 0;
  double beta = 1;
  double residual_rss = 0;
  // Half width of the 90 % interval in log units (ours): residual spread with a prior
  // pseudo-observation, times a Student-t quantile for the few degrees of freedom left.
  double log_half_width = 0;
};

// With one sample beta is fixed to 1; with none, the first device with alpha = 0 (no
// information: the interval is then wide).
BaselineFit FitBaseline(const ReferenceSet& refs, const LogSamples& samples);

// The whole table of `device` under `fit`.
DeviceTable BaselineTable(const ReferenceSet& refs, const BaselineFit& fit,
                          const DeviceData& device);

// Student-t 0.95 quantile (two-sided 90 %) for `dof` degrees of freedom (interpolated).
double StudentT95(double dof);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_MODEL_BASELINE_H_

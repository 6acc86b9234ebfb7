// The offline evaluation of the function model (core/model/function_model.h) on any space's
// latency table, same protocol as evaluation.h: leave one piece of hardware out (or an
// explicit train/test split), k target samples per seed, every method fit on the same
// samples. Architectures can be held out from everything (`arch_holdout`, `test_archs`): no
// device, reference or target, trains on them and only they are scored — the figure for
// architectures nobody measured.
//
// Nested: each fold's interval half width (per method and k) and maplex's settings (per k:
// virtual examples, baseline blend fixed or adaptive, agreement scale, unweighted floor) are
// chosen by leaving hardware out *within* the fold's training devices, never on the devices
// scored. With a holdout, the inner loop mirrors it: a second share of the training rows is
// held out of the inner references' fits and only those rows are scored. maplex keeps its
// default settings (maple+w's) unless a candidate beats them by more than one standard error
// of the paired per-(inner target, seed) difference.
//
//   FunctionEvaluationOptions o;  o.arch_holdout = 0.2;
//   absl::StatusOr<EvaluationReport> r = RunFunctionEvaluation(table, o);
#ifndef MAPLEX_CORE_EVAL_FUNCTION_EVALUATION_H_
#define MAPLEX_CORE_EVAL_FUNCTION_EVALUATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dataset/latency_table.h"
#include "core/eval/evaluation.h"
#include "core/model/function_model.h"

namespace maplex::core {

struct FunctionEvaluationOptions {
  std::vector<std::string> train;  // both empty: leave one hardware out
  std::vector<std::string> test;
  std::vector<int> ks = {3, 5, 10, 20};
  int seeds = 5;
  int first_seed = 0;  // the seeds are first_seed, first_seed + 1, ... (EvaluationOptions)
  std::vector<Method> methods = {Method::kBaseline, Method::kMaple, Method::kMapleVirtualExamples,
                                 Method::kMapleWeights, Method::kMapleX};
  // Share of the table's architectures held out (seeded by holdout_seed); 0 with no
  // test_archs: nothing is held out and each target scores every row but its k samples.
  double arch_holdout = 0;
  uint64_t holdout_seed = 1;
  // Exactly these are held out and scored (overrides arch_holdout); each must be in the table.
  std::vector<Architecture> test_archs;
  // Candidate pool (normalization, virtual examples): sampled members of the space.
  int pool_size = 256;
  uint64_t pool_seed = 7;
  FunctionConfig config;
  // Nested choices (see above); off: config as given, intervals of width 0.
  bool nested = true;
  int nested_seeds = 2;
  int nested_rows = 600;  // training rows scored per inner target
  int scatter_k = 10;
  int scatter_points = 300;
};

// The chosen settings of one fold, for the report's notes.
struct FoldChoice {
  std::string held_out;  // hardware (or "split")
  int k = 0;
  Method method = Method::kMapleX;
  double log_half_width = 0;
  bool virtual_examples = false;
  double baseline_mix = 0;
  bool adaptive_mix = false;  // baseline_mix scaled per target (FunctionConfig::adaptive_mix)
  double agreement_scale = 0;
  double unweighted_share = 0;
  // Mean of (Spearman rho + share within +-10 %) over the inner (target, draw) pairs, of the
  // default candidate and of the chosen one (equal when the default is kept; 0 without
  // nesting): the training devices' evidence for the choice.
  double inner_default = 0;
  double inner_chosen = 0;
};

struct FunctionEvaluationReport {
  EvaluationReport report;  // same shape as RunEvaluation's
  std::vector<FoldChoice> choices;
  // Each device's own function fit on all its training rows, scored on the scored rows:
  // the ceiling of these features (connected rows; one per test device).
  std::vector<std::pair<std::string, AccuracyMetrics>> ceiling;
  int scored_rows = 0;  // held-out rows (0: no holdout)
};

// InvalidArgument for an unknown device in train/test, a test architecture missing from the
// table, a holdout outside [0, 1), or a k that leaves nothing to sample or score.
absl::StatusOr<FunctionEvaluationReport> RunFunctionEvaluation(
    const SpaceLatencyTable& table, const FunctionEvaluationOptions& options);

}  // namespace maplex::core

#endif  // MAPLEX_CORE_EVAL_FUNCTION_EVALUATION_H_

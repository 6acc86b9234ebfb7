#include "core/model/maple_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/arch/nb201_space.h"

namespace maplex::core {
namespace {

bool UsesVirtualExamples(Method m) {
  return m == Method::kMapleVirtualExamples || m == Method::kMapleX;
}
bool UsesWeights(Method m) { return m == Method::kMapleWeights || m == Method::kMapleX; }

// The r leading latent factors of the standardised columns `cols` of `x`, scaled to unit
// variance over the architectures (N x r).
Eigen::MatrixXd LatentFactors(const Eigen::MatrixXd& x, const Eigen::MatrixXd& gram,
                              const std::vector<int>& cols, int rank) {
  const int m = static_cast<int>(cols.size());
  Eigen::MatrixXd g(m, m);
  Eigen::MatrixXd xs(x.rows(), m);
  for (int i = 0; i < m; ++i) {
    xs.col(i) = x.col(cols[i]);
    for (int j = 0; j < m; ++j) g(i, j) = gram(cols[i], cols[j]);
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(g);
  const int r = std::min(rank, m);
  Eigen::MatrixXd factors(x.rows(), r);
  const double n = static_cast<double>(x.rows());
  for (int j = 0; j < r; ++j) {
    const int e = m - 1 - j;  // eigenvalues ascend
    const double lambda = std::max(eig.eigenvalues()(e), 1e-12);
    factors.col(j) = xs * eig.eigenvectors().col(e) * std::sqrt(n / lambda);
  }
  return factors;
}

// Analytic architecture features, standardised over the space: log FLOPs, log parameters,
// log activations and the five op counts.
Eigen::MatrixXd AnalyticFeatures(int n) {
  const Nb201Space& space = Nb201Space::Get();
  Eigen::MatrixXd f(n, 8);
  std::vector<double> row(space.feature_dim());
  for (int a = 0; a < n; ++a) {
    space.Features(a, absl::MakeSpan(row));
    f(a, 0) = row[35];
    f(a, 1) = row[36];
    f(a, 2) = row[37];
    for (int o = 0; o < 5; ++o) f(a, 3 + o) = row[30 + o];
  }
  for (int j = 0; j < f.cols(); ++j) {
    const double mean = f.col(j).mean();
    f.col(j).array() -= mean;
    const double sd = std::sqrt(f.col(j).squaredNorm() / n);
    if (sd > 0) f.col(j) /= sd;
  }
  return f;
}

// Primitive count (non-"none" edges) of every cell minus its mean over the space.
Eigen::VectorXd PrimitiveCounts(int n) {
  const Nb201Space& space = Nb201Space::Get();
  Eigen::VectorXd c(n);
  for (int a = 0; a < n; ++a) c(a) = static_cast<double>(space.PrimitiveCount(a));
  c.array() -= c.mean();
  return c;
}

// [1, edges of each op type but "none"] of every cell: the op-cost model's design (column
// 0, the op "none", is the fixed cost instead: the counts of a cell add up to 6).
Eigen::MatrixXd OpCounts(int n) {
  const Nb201Space& space = Nb201Space::Get();
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n, kNb201OpCount);
  for (int a = 0; a < n; ++a) {
    for (Nb201Op op : space.CellAt(a)) c(a, static_cast<int>(op)) += 1;
  }
  c.col(static_cast<int>(Nb201Op::kNone)).setOnes();
  return c;
}

// Leave-one-out log errors, log(prediction without sample i / sample i), of the op-cost
// fit: least squares in relative error (rows scaled by 1 / latency), with the hat matrix's
// shortcut. A prediction <= 0 counts as a log error of 1.
Eigen::VectorXd OpCostLooLogErrors(const Eigen::MatrixXd& x, const Eigen::VectorXd& ms,
                                   Eigen::VectorXd* coefficients) {
  const Eigen::MatrixXd z = ms.cwiseInverse().asDiagonal() * x;
  Eigen::MatrixXd gram = z.transpose() * z;
  gram.diagonal().array() += 1e-9 * (1 + gram.diagonal().maxCoeff());
  const Eigen::LDLT<Eigen::MatrixXd> solver(gram);
  *coefficients = solver.solve(z.transpose() * Eigen::VectorXd::Ones(ms.size()));
  Eigen::VectorXd errors(ms.size());
  for (Eigen::Index i = 0; i < ms.size(); ++i) {
    const double leverage = z.row(i).dot(solver.solve(z.row(i).transpose()));
    const double relative = (1 - z.row(i).dot(*coefficients)) / std::max(1 - leverage, 1e-6);
    errors(i) = relative < 1 ? std::log(1 - relative) : 1.0;
  }
  return errors;
}

// Log marginal likelihood (up to a constant) of targets y at design rows phi under
// coefficients ~ N(mean, prior) and independent noise of variance noise_var, computed in
// coefficient space (p x p) so that it stays cheap for a reference's full column.
double LogEvidence(const Eigen::MatrixXd& phi, const Eigen::VectorXd& y,
                   const Eigen::VectorXd& mean, const Eigen::MatrixXd& prior, double noise_var) {
  const int p = static_cast<int>(prior.rows());
  const Eigen::VectorXd r = y - phi * mean;
  const Eigen::MatrixXd g = phi.transpose() * phi;
  const Eigen::VectorXd u = phi.transpose() * r;
  // S = noise_var I + phi prior phi'; Woodbury and the determinant lemma.
  const Eigen::MatrixXd inner = noise_var * Eigen::MatrixXd::Identity(p, p) + g * prior;
  const Eigen::PartialPivLU<Eigen::MatrixXd> lu(inner);
  const double quad = (r.squaredNorm() - u.dot(prior * lu.solve(u))) / noise_var;
  const Eigen::MatrixXd lemma = Eigen::MatrixXd::Identity(p, p) + g * prior / noise_var;
  const double log_det = static_cast<double>(y.size()) * std::log(noise_var) +
                         std::log(std::max(lemma.partialPivLu().determinant(), 1e-300));
  return -0.5 * (log_det + quad);
}

// Least-squares coefficients of every column of `y` on `basis`, and the residual variances.
void ProjectColumns(const Eigen::MatrixXd& basis, const Eigen::MatrixXd& y,
                    Eigen::MatrixXd* coefficients, Eigen::VectorXd* residual_var) {
  const Eigen::MatrixXd gram = basis.transpose() * basis;
  *coefficients = gram.ldlt().solve(basis.transpose() * y);
  const Eigen::MatrixXd residual = y - basis * *coefficients;
  *residual_var = residual.colwise().squaredNorm().transpose() / static_cast<double>(y.rows());
}

}  // namespace

absl::Status ApplyMapleConfigOverrides(std::string_view overrides, MapleConfig* config) {
  struct Field {
    const char* name;
    double* real;
    int* integer;
    bool* flag;
  };
  const Field fields[] = {
      {"rank", nullptr, &config->rank, nullptr},
      {"analytic_features", nullptr, nullptr, &config->analytic_features},
      {"analytic_prior_sd", &config->analytic_prior_sd, nullptr, nullptr},
      {"prior_scale", &config->prior_scale, nullptr, nullptr},
      {"unweighted_share", &config->unweighted_share, nullptr, nullptr},
      {"beta_sd", &config->beta_sd, nullptr, nullptr},
      {"intercept_sd", &config->intercept_sd, nullptr, nullptr},
      {"spec_bandwidth", &config->spec_bandwidth, nullptr, nullptr},
      {"agreement_scale", &config->agreement_scale, nullptr, nullptr},
      {"virtual_per_sample", nullptr, &config->virtual_per_sample, nullptr},
      {"virtual_weight", &config->virtual_weight, nullptr, nullptr},
      {"virtual_label_devices", nullptr, &config->virtual_label_devices, nullptr},
      {"virtual_max_samples", nullptr, &config->virtual_max_samples, nullptr},
      {"interval_scale", &config->interval_scale, nullptr, nullptr},
      {"agreement_power", &config->agreement_power, nullptr, nullptr},
      {"noise_prior_samples", &config->noise_prior_samples, nullptr, nullptr},
      {"posterior_variance_scale", &config->posterior_variance_scale, nullptr, nullptr},
      {"curvature_sd", &config->curvature_sd, nullptr, nullptr},
      {"primitive_sd", &config->primitive_sd, nullptr, nullptr},
      {"op_cost_min_samples", nullptr, &config->op_cost_min_samples, nullptr},
      {"primitive_max_samples", nullptr, &config->primitive_max_samples, nullptr},
      {"primitive_min_samples", nullptr, &config->primitive_min_samples, nullptr},
      {"primitive_min_log_evidence", &config->primitive_min_log_evidence, nullptr, nullptr},
  };
  const std::string text(overrides);
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const Field* field = nullptr;
    for (const Field& f : fields) {
      if (kv[0] == f.name) field = &f;
    }
    if (field == nullptr || kv.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("unknown MAPLE setting \"", item, "\""));
    }
    double v;
    if (!absl::SimpleAtod(kv[1], &v) || !std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("MAPLE setting ", kv[0], ": bad value \"", kv[1], "\""));
    }
    if (field->real) *field->real = v;
    if (field->integer) *field->integer = static_cast<int>(v);
    if (field->flag) *field->flag = v != 0;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MapleContext>> MapleContext::Create(const ReferenceSet& refs,
                                                                   const MapleConfig& config) {
  if (refs.size() < 2) {
    return absl::InvalidArgumentError("MAPLE needs at least two reference devices");
  }
  std::unique_ptr<MapleContext> ctx(new MapleContext(refs));
  ctx->config_ = config;
  const Eigen::MatrixXd& l = refs.log_latency;
  const int n = static_cast<int>(l.rows());
  const int d_count = refs.size();
  ctx->rank_ = std::max(1, std::min(config.rank, d_count));

  Eigen::MatrixXd x = l;
  for (int d = 0; d < d_count; ++d) {
    const double mean = x.col(d).mean();
    x.col(d).array() -= mean;
    const double sd = std::sqrt(x.col(d).squaredNorm() / n);
    if (sd > 0) x.col(d) /= sd;
  }
  const Eigen::MatrixXd gram = x.transpose() * x;
  ctx->profiles_ = x.transpose().cast<float>();

  const Eigen::MatrixXd analytic =
      config.analytic_features ? AnalyticFeatures(n) : Eigen::MatrixXd(n, 0);
  auto basis_for = [&](const std::vector<int>& cols) {
    const Eigen::MatrixXd factors = LatentFactors(x, gram, cols, ctx->rank_);
    Eigen::MatrixXd basis(n, 1 + factors.cols() + analytic.cols());
    basis << Eigen::VectorXd::Ones(n), factors, analytic;
    return basis;
  };
  std::vector<int> all(d_count);
  std::iota(all.begin(), all.end(), 0);
  ctx->basis_ = basis_for(all);
  Eigen::VectorXd in_sample_var;
  ProjectColumns(ctx->basis_, l, &ctx->loadings_, &in_sample_var);

  // The noise a new device leaves outside the factor space: refit the factors without each
  // reference hardware and project its configurations.
  std::map<std::string, std::vector<int>> by_hardware;
  for (int d = 0; d < d_count; ++d) by_hardware[refs.hardware[d]].push_back(d);
  ctx->residual_var_ = in_sample_var;
  if (by_hardware.size() > 1) {
    for (const auto& [hardware, members] : by_hardware) {
      std::vector<int> others;
      for (int d = 0; d < d_count; ++d) {
        if (refs.hardware[d] != hardware) others.push_back(d);
      }
      const Eigen::MatrixXd basis = basis_for(others);
      Eigen::MatrixXd y(n, members.size()), coefficients;
      for (size_t i = 0; i < members.size(); ++i) y.col(i) = l.col(members[i]);
      Eigen::VectorXd var;
      ProjectColumns(basis, y, &coefficients, &var);
      for (size_t i = 0; i < members.size(); ++i) ctx->residual_var_(members[i]) = var(i);
    }
  }

  ctx->primitive_counts_ = PrimitiveCounts(n);
  ctx->op_counts_ = OpCounts(n);
  ctx->encoder_ = DescriptorEncoder::Fit(refs.descriptors);
  for (const HardwareDescriptor& d : refs.descriptors) {
    ctx->encoded_.push_back(ctx->encoder_.Encode(d));
    ctx->references_have_counters_ |= ctx->encoded_.back().has_counters();
  }
  return ctx;
}

std::vector<double> MapleContext::AffineResidualVariances(const LogSamples& samples) const {
  const size_t k = samples.archs.size();
  std::vector<double> ms(refs_.size(), 0);
  if (k < 3) return ms;
  for (int d = 0; d < refs_.size(); ++d) {
    ms[d] = FitAffineToDevice(refs_, d, samples).rss / static_cast<double>(k - 2);
  }
  return ms;
}

std::vector<double> MapleContext::ImportanceWeights(const EncodedDescriptor& target,
                                                    const LogSamples& samples) const {
  return ImportanceWeights(target, samples.archs.size(), AffineResidualVariances(samples));
}

std::vector<double> MapleContext::ImportanceWeights(
    const EncodedDescriptor& target, size_t k,
    const std::vector<double>& residual_variances) const {
  const int d_count = refs_.size();
  std::vector<double> log_w(d_count, 0);
  // Spec (and counter) similarity: an RBF over standardised fields both devices know.
  if (target.has_spec() || target.has_counters()) {
    for (int d = 0; d < d_count; ++d) {
      log_w[d] += std::log(
          std::max(encoder_.Similarity(target, encoded_[d], config_.spec_bandwidth), 1e-300));
    }
  }
  // Agreement with the k samples (ours): residual variance of the affine fit of the
  // target's log latencies on the device's, as the baseline measures it; needs k >= 3 for
  // a residual to exist.
  if (k >= 3) {
    const std::vector<double>& ms = residual_variances;
    const double s2 = config_.agreement_scale * config_.agreement_scale;
    if (config_.agreement_power > 0) {
      // Profile likelihood of "the target is an affine copy of d" under Gaussian noise:
      // RSS^(-(k-2)/2), tempered; a floor keeps a perfect fit finite.
      for (int d = 0; d < d_count; ++d) {
        log_w[d] += -0.5 * config_.agreement_power * static_cast<double>(k - 2) *
                    std::log(ms[d] + 1e-4 * s2);
      }
    } else {
      const double best = *std::min_element(ms.begin(), ms.end());
      for (int d = 0; d < d_count; ++d) log_w[d] += -0.5 * (ms[d] - best) / s2;
    }
  }
  const double top = *std::max_element(log_w.begin(), log_w.end());
  std::vector<double> w(d_count);
  double sum = 0;
  for (int d = 0; d < d_count; ++d) sum += (w[d] = std::exp(log_w[d] - top));
  for (double& v : w) v /= sum;
  return w;
}

DeviceTable MapleContext::Fit(const DeviceData& device, Method method, MapleFitInfo* info,
                              const PrimitiveCost* same_hardware) const {
  return FitImpl(device, method, info, same_hardware, nullptr);
}

std::optional<PrimitiveCost> MapleContext::EstimatePrimitiveCost(const DeviceData& device,
                                                                 Method method) const {
  if (config_.primitive_sd <= 0 ||
      static_cast<int>(device.samples.size()) < std::max(config_.primitive_min_samples, 3)) {
    return std::nullopt;
  }
  PrimitiveCost cost;
  FitImpl(device, method, nullptr, nullptr, &cost);
  return cost;
}

DeviceTable MapleContext::FitImpl(const DeviceData& device, Method method, MapleFitInfo* info,
                                  const PrimitiveCost* same_hardware,
                                  PrimitiveCost* estimate) const {
  const int n = static_cast<int>(basis_.rows());
  const int p_shared = static_cast<int>(basis_.cols());
  const int d_count = refs_.size();
  const LogSamples samples = ToLogSamples(device);
  const size_t k = samples.archs.size();
  const EncodedDescriptor target = encoder_.Encode(device.descriptor);
  const bool use_weights = UsesWeights(method);
  const bool use_virtual =
      UsesVirtualExamples(method) && k >= 1 && static_cast<int>(k) <= config_.virtual_max_samples;

  // Each an affine fit of the k samples on a whole reference column: computed once, used by
  // the weights and by the interval.
  const std::vector<double> residual_variances = AffineResidualVariances(samples);
  const std::vector<double> similarity = ImportanceWeights(target, k, residual_variances);
  const std::vector<double> uniform(d_count, 1.0 / d_count);
  const std::vector<double>& w = use_weights ? similarity : uniform;

  // Prior over the target's coefficients from the references' (empirical Bayes).
  const Eigen::Map<const Eigen::VectorXd> wv(w.data(), d_count);
  const Eigen::Map<const Eigen::VectorXd> uv(uniform.data(), d_count);
  const Eigen::VectorXd shared_mean = loadings_ * wv;
  auto spread = [&](const Eigen::VectorXd& weights, const Eigen::VectorXd& centre) {
    const Eigen::MatrixXd dev = loadings_.colwise() - centre;
    return Eigen::MatrixXd(dev * weights.asDiagonal() * dev.transpose());
  };
  Eigen::MatrixXd prior = config_.prior_scale * spread(wv, shared_mean) +
                          config_.unweighted_share * spread(uv, loadings_ * uv);
  // Free scaling along the prior mean of the factor loadings: the target may be a faster
  // or slower version of what its similar devices are.
  Eigen::VectorXd direction = shared_mean;
  direction(0) = 0;
  prior += config_.beta_sd * config_.beta_sd * direction * direction.transpose();
  prior.row(0).setZero();
  prior.col(0).setZero();
  prior(0, 0) = config_.intercept_sd * config_.intercept_sd;
  for (int j = 1 + rank_; j < p_shared; ++j) {
    prior(j, j) += config_.analytic_prior_sd * config_.analytic_prior_sd;
  }
  // Curvature (ours): a term quadratic in the prior's standardised profile, so that the
  // target may bend away from an affine copy of its similar devices (e.g. a fixed
  // overhead that flattens fast architectures); zero-mean prior, sd curvature_sd.
  const bool curved = config_.curvature_sd > 0;
  const bool primitive =
      config_.primitive_sd > 0 &&
      static_cast<int>(k) >= std::max(config_.primitive_min_samples, 3) &&
      (estimate != nullptr || static_cast<int>(k) <= config_.primitive_max_samples);
  const int p_curved = p_shared + (curved ? 1 : 0);
  const int p = p_curved + (primitive ? 1 : 0);
  Eigen::MatrixXd basis(n, p);
  basis.leftCols(p_shared) = basis_;
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(p);
  mean.head(p_shared) = shared_mean;
  if (curved) {
    Eigen::VectorXd z = basis_ * shared_mean;
    z.array() -= z.mean();
    const double sd = std::sqrt(z.squaredNorm() / n);
    if (sd > 0) z /= sd;
    basis.col(p_shared) = z.array().square() - 1;
    prior.conservativeResize(p, p);
    prior.row(p_shared).setZero();
    prior.col(p_shared).setZero();
    prior(p_shared, p_shared) = config_.curvature_sd * config_.curvature_sd;
  }

  double noise_var = 0;
  for (int d = 0; d < d_count; ++d) noise_var += w[d] * residual_var_(d);

  double primitive_sd = 0;
  double primitive_mean = 0;
  // The real samples' rows of the basis, for the primitive term's evidence and cost.
  Eigen::MatrixXd real_phi;
  Eigen::VectorXd real_y;
  if (primitive) {
    basis.col(p_curved) = primitive_counts_;
    prior.conservativeResize(p, p);
    prior.row(p_curved).setZero();
    prior.col(p_curved).setZero();
    real_phi.resize(k, p);
    real_y.resize(k);
    for (size_t i = 0; i < k; ++i) {
      real_phi.row(i) = basis.row(samples.archs[i]);
      real_y(i) = samples.log_latency[i];
    }
    if (estimate != nullptr) {
      // The device's own cost (EstimatePrimitiveCost): the term on at its full prior sd.
      primitive_sd = config_.primitive_sd;
    } else {
      // Empirical Bayes over a short grid: the real samples decide whether the target pays
      // per primitive beyond what its similar references do.
      // Centred on 0 (the references' view) or, when a better-measured device of the same
      // hardware is known, on its cost (ours: the fixed cost per dispatched primitive is
      // largely the machine's; on the onboarding data eigen/1 thread pays 0.135 and oneDNN/2
      // threads 0.121 log units), its uncertainty added to the prior's.
      std::vector<double> centres = {0.0};
      if (same_hardware != nullptr) centres.push_back(same_hardware->mean);
      double best = -std::numeric_limits<double>::infinity();
      for (double centre : centres) {
        const double centre_var = centre != 0 ? same_hardware->sd * same_hardware->sd : 0.0;
        for (double share : {0.0, 0.125, 0.25, 0.5, 1.0}) {
          const double sd = share * config_.primitive_sd;
          prior(p_curved, p_curved) = sd * sd + centre_var;
          mean(p_curved) = centre;
          Eigen::MatrixXd jittered = prior;
          jittered.diagonal().array() += 1e-8;
          // The term must beat "off" by a margin: with few samples the evidence is noisy, and
          // a term switched on by chance costs more than one switched off by chance.
          const bool on = sd > 0 || centre != 0;
          const double evidence = LogEvidence(real_phi, real_y, mean, jittered, noise_var) -
                                  (on ? config_.primitive_min_log_evidence : 0.0);
          if (evidence > best + 1e-9) {
            best = evidence;
            primitive_sd = std::sqrt(sd * sd + centre_var);
            primitive_mean = centre;
          }
        }
      }
    }
    prior(p_curved, p_curved) = primitive_sd * primitive_sd;
    mean(p_curved) = primitive_mean;
  }
  prior.diagonal().array() += 1e-8;
  const Eigen::MatrixXd prior_precision = prior.ldlt().solve(Eigen::MatrixXd::Identity(p, p));
  // The per-primitive cost the real samples alone imply (posterior mean without virtual
  // examples): virtual labels come from references that lack it, so they carry it over
  // explicitly instead of pulling it back to zero.
  double primitive_cost = primitive_mean;
  if (primitive && primitive_sd > 0) {
    const Eigen::LDLT<Eigen::MatrixXd> real_only(prior_precision +
                                                 real_phi.transpose() * real_phi / noise_var);
    const Eigen::VectorXd c =
        real_only.solve(prior_precision * mean + real_phi.transpose() * real_y / noise_var);
    primitive_cost = c(p_curved);
    if (estimate != nullptr) {
      Eigen::VectorXd unit = Eigen::VectorXd::Zero(p);
      unit(p_curved) = 1;
      // Scaled by the residual variance of the device's own samples where that exceeds the
      // assumed noise: a well-measured device is not also a well-modelled one.
      const double dof = std::max(static_cast<double>(k) - p, 1.0);
      const double scale = std::max((real_y - real_phi * c).squaredNorm() / dof / noise_var, 1.0);
      estimate->mean = primitive_cost;
      estimate->sd = std::sqrt(std::max(scale * real_only.solve(unit)(p_curved), 0.0));
    }
  }

  // Observations: the real samples (weight 1) and, for MAPLE-X, virtual ones.
  std::vector<int32_t> rows(samples.archs);
  std::vector<double> targets(samples.log_latency);
  std::vector<double> row_weight(k, 1.0);
  if (use_virtual) {
    // Label devices: the most similar references, by the MAPLE-X similarity.
    std::vector<int> order(d_count);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return similarity[a] > similarity[b]; });
    const int label_count = std::min(config_.virtual_label_devices, d_count);
    double label_sum = 0;
    for (int i = 0; i < label_count; ++i) label_sum += similarity[order[i]];
    std::vector<bool> taken(n, false);
    for (int32_t a : samples.archs) taken[a] = true;
    for (size_t i = 0; i < k; ++i) {
      const int32_t source = samples.archs[i];
      const Eigen::VectorXf distance =
          (profiles_.colwise() - profiles_.col(source)).colwise().squaredNorm().transpose();
      std::vector<int32_t> candidates(n);
      std::iota(candidates.begin(), candidates.end(), 0);
      const int want = std::min(config_.virtual_per_sample + static_cast<int>(k) + 1, n);
      std::partial_sort(candidates.begin(), candidates.begin() + want, candidates.end(),
                        [&](int32_t a, int32_t b) {
                          return distance(a) < distance(b) || (distance(a) == distance(b) && a < b);
                        });
      int added = 0;
      for (int c = 0; c < want && added < config_.virtual_per_sample; ++c) {
        const int32_t neighbour = candidates[c];
        if (taken[neighbour]) continue;
        taken[neighbour] = true;
        double log_ratio = 0;
        for (int j = 0; j < label_count; ++j) {
          const int d = order[j];
          const double share = label_sum > 0 ? similarity[d] / label_sum : 1.0 / label_count;
          log_ratio += share * (refs_.log_latency(neighbour, d) - refs_.log_latency(source, d));
        }
        if (primitive_cost != 0) {
          log_ratio += primitive_cost * (primitive_counts_(neighbour) - primitive_counts_(source));
        }
        rows.push_back(neighbour);
        targets.push_back(samples.log_latency[i] + log_ratio);
        row_weight.push_back(config_.virtual_weight);
        ++added;
      }
    }
  }

  // Posterior of the coefficients (Bayesian linear regression, known noise variance).
  const size_t m = rows.size();
  Eigen::MatrixXd phi(m, p);
  Eigen::VectorXd y(m), omega(m);
  for (size_t i = 0; i < m; ++i) {
    phi.row(i) = basis.row(rows[i]);
    y(i) = targets[i];
    omega(i) = row_weight[i] / noise_var;
  }
  const Eigen::MatrixXd precision = prior_precision + phi.transpose() * omega.asDiagonal() * phi;
  const Eigen::VectorXd rhs = prior_precision * mean + phi.transpose() * (omega.asDiagonal() * y);
  const Eigen::LDLT<Eigen::MatrixXd> solver(precision);
  const Eigen::VectorXd coefficients = solver.solve(rhs);
  const Eigen::MatrixXd covariance = solver.solve(Eigen::MatrixXd::Identity(p, p));
  const Eigen::LLT<Eigen::MatrixXd> chol(covariance);
  const Eigen::MatrixXd spread_factor = basis * Eigen::MatrixXd(chol.matrixL());

  // The interval's noise (ours): the references' out-of-factor-space noise as a prior worth
  // noise_prior_samples observations, pooled with how far the target's samples sit from an
  // affine copy of each reference, weighted by similarity — k - 2 degrees of freedom, as the
  // baseline's spread — so that a target unlike its similar references widens its interval.
  double interval_noise_var = noise_var;
  if (k >= 3) {
    double observed = 0;
    for (int d = 0; d < d_count; ++d) observed += similarity[d] * residual_variances[d];
    const double dof = static_cast<double>(k - 2);
    interval_noise_var = (config_.noise_prior_samples * noise_var + dof * observed) /
                         (config_.noise_prior_samples + dof);
  }

  DeviceTable t;
  t.device = device.device;
  t.hardware = device.hardware.empty() ? device.device : device.hardware;
  const bool similarity_used = use_weights || use_virtual;
  t.use.spec = similarity_used && target.has_spec();
  t.use.counters = similarity_used && target.has_counters() && references_have_counters_;
  t.use.measured_latencies = k > 0;
  t.sample_count = static_cast<int>(k);
  Eigen::VectorXd log_mean = basis * coefficients;
  // Op cost: the blend with the structural estimate, by each one's leave-one-out error on
  // the real samples (the posterior's: r_i / (1 - h_ii), its prior and the virtual
  // examples held fixed).
  double op_cost_share = 0;
  if (method == Method::kMapleX && config_.op_cost_min_samples > 0 &&
      static_cast<int>(k) >= std::max(config_.op_cost_min_samples, kNb201OpCount + 2)) {
    Eigen::MatrixXd x(k, kNb201OpCount);
    Eigen::VectorXd ms(k), maple_errors(k);
    for (size_t i = 0; i < k; ++i) {
      const int32_t a = samples.archs[i];
      x.row(i) = op_counts_.row(a);
      ms(i) = std::exp(samples.log_latency[i]);
      const Eigen::VectorXd f = basis.row(a).transpose();
      const double leverage = f.dot(covariance * f) / noise_var;
      maple_errors(i) = (log_mean(a) - samples.log_latency[i]) / std::max(1 - leverage, 1e-6);
    }
    Eigen::VectorXd op_coefficients;
    const Eigen::VectorXd op_errors = OpCostLooLogErrors(x, ms, &op_coefficients);
    const double maple_mse = maple_errors.squaredNorm() / k + 1e-12;
    const double op_mse = op_errors.squaredNorm() / k + 1e-12;
    op_cost_share = (1 / op_mse) / (1 / op_mse + 1 / maple_mse);
    const Eigen::VectorXd op_ms = op_counts_ * op_coefficients;
    for (int a = 0; a < n; ++a) {
      if (op_ms(a) > 0) {
        log_mean(a) = (1 - op_cost_share) * log_mean(a) + op_cost_share * std::log(op_ms(a));
      }
    }
  }
  t.log_latency.assign(log_mean.data(), log_mean.data() + n);
  t.log_half_width.resize(n);
  for (int a = 0; a < n; ++a) {
    t.log_half_width[a] =
        kZ90 * config_.interval_scale *
        std::sqrt(config_.posterior_variance_scale * spread_factor.row(a).squaredNorm() +
                  interval_noise_var);
  }
  int heaviest = 0;
  for (int d = 1; d < d_count; ++d) heaviest = w[d] > w[heaviest] ? d : heaviest;
  t.fit = absl::StrFormat(
      "%s: %d samples + %d virtual, rank %d, noise sd %.3f, heaviest %s (%.2f), primitive prior "
      "%.3f +- %.3f, cost %.3f, op-cost share %.2f",
      MethodName(method), k, m - k, rank_, std::sqrt(noise_var), refs_.devices[heaviest],
      w[heaviest], primitive_mean, primitive_sd, primitive ? coefficients(p_curved) : 0.0,
      op_cost_share);
  if (info != nullptr) {
    info->weights = w;
    info->virtual_examples = static_cast<int>(m - k);
    info->noise_sd = std::sqrt(noise_var);
    info->primitive_sd = primitive_sd;
    info->primitive_mean = primitive_mean;
    info->op_cost_share = op_cost_share;
  }
  return t;
}

}  // namespace maplex::core

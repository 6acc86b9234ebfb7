#include "core/model/function_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "Eigen/Dense"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/arch/space_registry.h"

namespace maplex::core {

// ---------------------------------------------------------------------------------------------
// FeatureMap

FeatureMap::FeatureMap(const ArchitectureSpace& space) : space_(&space) {
  dim_ = 1;
  for (int p = 0; p < space.positions(); ++p) {
    offset_.push_back(dim_);
    dim_ += space.options(p);
  }
  pairs_ = space.InteractingPositions();
  if (pairs_.size() > 64) pairs_.resize(64);  // kMaxActive
  for (const auto& [i, j] : pairs_) {
    pair_offset_.push_back(dim_);
    dim_ += space.options(i) * space.options(j);
  }
}

void FeatureMap::Active(const Architecture& a, int* out) const {
  int n = 0;
  out[n++] = 0;
  for (size_t p = 0; p < offset_.size(); ++p) out[n++] = offset_[p] + a.choice(p);
  for (size_t q = 0; q < pairs_.size(); ++q) {
    const auto [i, j] = pairs_[q];
    out[n++] = pair_offset_[q] + a.choice(i) * space_->options(j) + a.choice(j);
  }
}

double FeatureMap::Dot(const Architecture& a, const double* w) const {
  double s = w[0];
  const int positions = static_cast<int>(offset_.size());
  for (int p = 0; p < positions; ++p) s += w[offset_[p] + a.choice(p)];
  for (size_t q = 0; q < pairs_.size(); ++q) {
    const auto [i, j] = pairs_[q];
    s += w[pair_offset_[q] + a.choice(i) * space_->options(j) + a.choice(j)];
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Serialization

namespace {

constexpr uint32_t kMagic = 0x4d584631;  // "MXF1"

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutF64(std::string* out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
}
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint32_t U32() {
    if (in.size() < 4) return ok = false, 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(4);
    return v;
  }
  double F64() {
    if (in.size() < 8) return ok = false, 0;
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(8);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  std::string String() {
    const uint32_t n = U32();
    if (!ok || in.size() < n) return ok = false, std::string();
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

std::string SerializeFunctionModel(const FunctionModelParams& params) {
  std::string out;
  PutU32(&out, kMagic);
  PutString(&out, params.space);
  PutU32(&out, static_cast<uint32_t>(params.devices.size()));
  for (const FunctionDevice& d : params.devices) {
    PutString(&out, d.device);
    PutU32(&out, static_cast<uint32_t>(d.transfer_reference + 1));
    PutF64(&out, d.alpha);
    PutF64(&out, d.beta);
    PutF64(&out, d.mix);
    PutF64(&out, d.log_half_width);
    PutU32(&out, static_cast<uint32_t>(d.weights.size()));
    for (double w : d.weights) PutF64(&out, w);
  }
  return out;
}

absl::StatusOr<FunctionModelParams> ParseFunctionModel(std::string_view bytes) {
  Reader r{bytes};
  if (r.U32() != kMagic || !r.ok) {
    return absl::InvalidArgumentError("function model: not a serialized function model");
  }
  FunctionModelParams params;
  params.space = r.String();
  const uint32_t n = r.U32();
  for (uint32_t i = 0; r.ok && i < n; ++i) {
    FunctionDevice d;
    d.device = r.String();
    d.transfer_reference = static_cast<int>(r.U32()) - 1;
    d.alpha = r.F64();
    d.beta = r.F64();
    d.mix = r.F64();
    d.log_half_width = r.F64();
    const uint32_t dim = r.U32();
    if (!r.ok || r.in.size() / 8 < dim) {
      return absl::InvalidArgumentError(absl::StrCat("function model: device ", i, " truncated"));
    }
    d.weights.resize(dim);
    for (double& w : d.weights) w = r.F64();
    params.devices.push_back(std::move(d));
  }
  if (!r.ok) return absl::InvalidArgumentError("function model: truncated");
  if (!r.in.empty()) return absl::InvalidArgumentError("function model: trailing bytes");
  absl::StatusOr<FunctionModel> check = FunctionModel::Create(params);
  if (!check.ok()) return check.status();
  return params;
}

// ---------------------------------------------------------------------------------------------
// FunctionModel

FunctionModel::FunctionModel(FunctionModelParams params, FeatureMap phi)
    : params_(std::move(params)), phi_(std::move(phi)) {}

absl::StatusOr<FunctionModel> FunctionModel::Create(FunctionModelParams params) {
  const ArchitectureSpace* space = FindSpace(params.space);
  if (space == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("function model: unknown space \"", params.space, "\""));
  }
  FeatureMap phi(*space);
  for (size_t i = 0; i < params.devices.size(); ++i) {
    const FunctionDevice& d = params.devices[i];
    if (static_cast<int>(d.weights.size()) != phi.dim()) {
      return absl::InvalidArgumentError(
          absl::StrCat("function model: device ", d.device, " has ", d.weights.size(),
                       " coefficients, ", std::string(space->name()), " needs ", phi.dim()));
    }
    if (d.transfer_reference < -1 ||
        d.transfer_reference >= static_cast<int>(params.devices.size()) ||
        (d.transfer_reference == -1 && d.mix != 0) ||
        (d.transfer_reference >= 0 &&
         params.devices[d.transfer_reference].transfer_reference >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("function model: device ", d.device, " has a bad transfer reference"));
    }
    if (!(d.mix >= 0 && d.mix <= 1) || !std::isfinite(d.log_half_width) || d.log_half_width < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("function model: device ", d.device, " has a bad mix or interval"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (params.devices[j].device == d.device) {
        return absl::InvalidArgumentError(
            absl::StrCat("function model: device ", d.device, " appears twice"));
      }
    }
  }
  params.space = std::string(space->name());
  return FunctionModel(std::move(params), std::move(phi));
}

int FunctionModel::DeviceIndex(std::string_view device) const {
  for (size_t i = 0; i < params_.devices.size(); ++i) {
    if (params_.devices[i].device == device) return static_cast<int>(i);
  }
  return -1;
}

double FunctionModel::PredictMs(int device, const Architecture& a) const {
  const FunctionDevice& d = params_.devices[device];
  double y = phi_.Dot(a, d.weights.data());
  if (d.mix > 0) {
    const double ref = phi_.Dot(a, params_.devices[d.transfer_reference].weights.data());
    const double transfer = std::exp(d.alpha + d.beta * std::log(std::max(ref, 1e-9)));
    y = (1 - d.mix) * y + d.mix * transfer;
  }
  return std::max(y, 1e-6);
}

absl::Status FunctionModel::Predict(std::string_view device, absl::Span<const Architecture> archs,
                                    absl::Span<LatencyPrediction> out) const {
  const int index = DeviceIndex(device);
  if (index < 0) {
    return absl::NotFoundError(
        absl::StrCat("function model has no device \"", std::string(device), "\""));
  }
  if (archs.size() != out.size()) {
    return absl::InvalidArgumentError("Predict: archs and out differ in size");
  }
  for (size_t i = 0; i < archs.size(); ++i) {
    if (archs[i].space() != &phi_.space()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Predict: architecture ", i, " is not of space ", params_.space));
    }
  }
  const auto [lo, hi] = IntervalFactors(index);
  for (size_t i = 0; i < archs.size(); ++i) {
    const double y = PredictMs(index, archs[i]);
    out[i] = {y, y * lo, y * hi};
  }
  return absl::OkStatus();
}

std::pair<double, double> FunctionModel::IntervalFactors(int device) const {
  const double h = params_.devices[device].log_half_width;
  return {std::exp(-h), std::exp(h)};
}

// ---------------------------------------------------------------------------------------------
// Fitting

ReferenceFit FitReference(const FeatureMap& phi, std::string device, std::string hardware,
                          HardwareDescriptor descriptor, absl::Span<const Architecture> archs,
                          absl::Span<const double> latency_ms, double lambda) {
  const int p = phi.dim();
  Eigen::MatrixXd xtx = Eigen::MatrixXd::Zero(p, p);
  Eigen::VectorXd xty = Eigen::VectorXd::Zero(p);
  std::vector<int> active(phi.active_count());
  for (size_t r = 0; r < archs.size(); ++r) {
    phi.Active(archs[r], active.data());
    for (int i : active) {
      xty(i) += latency_ms[r];
      for (int j : active) xtx(i, j) += 1;
    }
  }
  for (int i = 1; i < p; ++i) xtx(i, i) += lambda;
  xtx(0, 0) += 1e-9;
  Eigen::VectorXd w = xtx.ldlt().solve(xty);
  ReferenceFit fit;
  fit.device = std::move(device);
  fit.hardware = std::move(hardware);
  fit.descriptor = std::move(descriptor);
  fit.weights.assign(w.data(), w.data() + p);
  return fit;
}

FunctionFitter::FunctionFitter(const FeatureMap& phi, std::vector<ReferenceFit> references,
                               std::vector<Architecture> pool)
    : phi_(&phi), refs_(std::move(references)), pool_(std::move(pool)) {
  std::vector<HardwareDescriptor> descriptors;
  for (const ReferenceFit& r : refs_) {
    double mean = 0;
    for (const Architecture& a : pool_) mean += phi.Dot(a, r.weights.data());
    mean = std::max(mean / std::max<size_t>(pool_.size(), 1), 1e-9);
    levels_.push_back(mean);
    std::vector<double> u(r.weights);
    for (double& v : u) v /= mean;
    normalized_.push_back(std::move(u));
    descriptors.push_back(r.descriptor);
  }
  encoder_ = DescriptorEncoder::Fit(descriptors);
  for (const ReferenceFit& r : refs_) encoded_.push_back(encoder_.Encode(r.descriptor));
}

const std::vector<double>& FunctionFitter::Macs() const {
  // The MACs as a function over phi: a ridge fit to their values on the pool (exact where
  // they are a sum over positions, as FBNet's), scaled to a pool mean of 1. Only fits that
  // ask for it (macs_sd) pay for it, once per fitter.
  std::call_once(macs_once_, [this] {
    if (pool_.size() < 2) return;
    std::vector<double> macs(pool_.size());
    for (size_t i = 0; i < pool_.size(); ++i) {
      macs[i] = static_cast<double>(phi_->space().Cost(pool_[i]).macs);
    }
    const double mean = std::accumulate(macs.begin(), macs.end(), 0.0) / macs.size();
    if (!(mean > 0)) return;
    for (double& x : macs) x /= mean;
    macs_ = FitReference(*phi_, "", "", {}, pool_, macs, 1e-3).weights;
  });
  return macs_;
}

FunctionFitter::Transfer FunctionFitter::FitTransfer(
    int ref, absl::Span<const FunctionSample> samples) const {
  const size_t k = samples.size();
  std::vector<double> x(k), y(k);
  for (size_t i = 0; i < k; ++i) {
    x[i] = std::log(std::max(phi_->Dot(samples[i].arch, refs_[ref].weights.data()), 1e-9));
    y[i] = std::log(samples[i].latency_ms);
  }
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / k;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / k;
  Transfer t;
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < k; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  t.beta = (k >= 2 && sxx > 1e-12) ? sxy / sxx : 1.0;
  t.alpha = my - t.beta * mx;
  double rss = 0;
  for (size_t i = 0; i < k; ++i) {
    const double e = y[i] - t.alpha - t.beta * x[i];
    rss += e * e;
  }
  t.rms = std::sqrt(rss / k);
  // Leave-one-out residuals in closed form: e_i / (1 - h_ii) for the two-parameter fit,
  // (y_i - x_i - mean of the others' y - x) for the level alone.
  double loo = 0, level_loo = 0;
  double mean_d = 0;
  for (size_t i = 0; i < k; ++i) mean_d += (y[i] - x[i]) / k;
  for (size_t i = 0; i < k; ++i) {
    const double e = y[i] - t.alpha - t.beta * x[i];
    const double h = 1.0 / k + (sxx > 1e-12 ? (x[i] - mx) * (x[i] - mx) / sxx : 0);
    const double e_loo = k >= 3 ? e / std::max(1 - h, 1e-3) : e;
    loo += e_loo * e_loo;
    const double d = (y[i] - x[i]) - mean_d;
    const double d_loo = k >= 2 ? d * k / (k - 1.0) : d;
    level_loo += d_loo * d_loo;
  }
  t.loo_rms = std::sqrt(loo / k);
  t.level_loo_rms = std::sqrt(level_loo / k);
  return t;
}

double FunctionFitter::PredictMs(const FunctionDevice& d, const Architecture& a) const {
  double y = phi_->Dot(a, d.weights.data());
  if (d.mix > 0) {
    const double ref = phi_->Dot(a, refs_[d.transfer_reference].weights.data());
    y = (1 - d.mix) * y + d.mix * std::exp(d.alpha + d.beta * std::log(std::max(ref, 1e-9)));
  }
  return std::max(y, 1e-6);
}

FunctionDevice FunctionFitter::Fit(Method method, absl::Span<const FunctionSample> samples,
                                   const HardwareDescriptor& descriptor,
                                   const FunctionConfig& config) const {
  const int n_refs = static_cast<int>(refs_.size());
  const int k = static_cast<int>(samples.size());
  const int p = phi_->dim();
  FunctionDevice out;
  out.weights.assign(p, 0.0);
  if (k == 0 || n_refs == 0) {
    // No evidence: the references' mean function (every method alike).
    for (const ReferenceFit& r : refs_) {
      for (int j = 0; j < p; ++j) out.weights[j] += r.weights[j] / n_refs;
    }
    return out;
  }

  // The baseline transfer from every reference, and the best one.
  std::vector<Transfer> transfers(n_refs);
  int best = 0;
  for (int d = 0; d < n_refs; ++d) {
    transfers[d] = FitTransfer(d, samples);
    if (transfers[d].rms < transfers[best].rms) best = d;
  }
  if (method == Method::kBaseline) {
    out.transfer_reference = best;
    out.alpha = transfers[best].alpha;
    out.beta = transfers[best].beta;
    out.mix = 1;
    return out;
  }
  const bool weighted = method == Method::kMapleWeights || method == Method::kMapleX;
  const bool virtual_examples =
      (method == Method::kMapleVirtualExamples || method == Method::kMapleX) &&
      k >= config.virtual_min_samples;

  // The references the prior is built from: all, or the best-agreeing max_prior_references.
  std::vector<int> use(n_refs);
  std::iota(use.begin(), use.end(), 0);
  if (config.max_prior_references > 0 && n_refs > config.max_prior_references) {
    std::stable_sort(use.begin(), use.end(),
                     [&](int a, int b) { return transfers[a].rms < transfers[b].rms; });
    use.resize(config.max_prior_references);
    std::sort(use.begin(), use.end());
  }
  const int n_use = static_cast<int>(use.size());

  // Importance weights: spec similarity x agreement with the k samples.
  std::vector<double> pi(n_use, 1.0 / n_use);
  if (weighted) {
    const EncodedDescriptor target = encoder_.Encode(descriptor);
    double total = 0;
    for (int i = 0; i < n_use; ++i) {
      const int d = use[i];
      double error = transfers[d].rms;
      double dof = std::max(k - 2, 1);
      if (config.agreement_mode == 1) {
        error = transfers[d].loo_rms;
        dof = k;
      } else if (config.agreement_mode == 2) {
        error = transfers[d].level_loo_rms;
        dof = k;
      }
      const double z = error / config.agreement_scale;
      const double agreement = std::exp(-0.5 * z * z * dof);
      pi[i] = encoder_.Similarity(target, encoded_[d], config.spec_bandwidth) *
              std::max(agreement, 1e-300);
      total += pi[i];
    }
    if (!(total > 0)) {
      pi.assign(n_use, 1.0 / n_use);
    } else {
      for (double& v : pi)
        v = (1 - config.unweighted_share) * v / total + config.unweighted_share / n_use;
    }
  }

  // The posterior under the prior built with importance weights pi.
  struct Posterior {
    std::vector<double> weights;
    Eigen::VectorXd z, alpha_vec, k_inv_diag;
    std::vector<Architecture> obs_arch;
    std::vector<double> obs_y;
    double loo_mse = 0;
  };
  auto solve = [&](const std::vector<double>& pi) {
    // Prior over the target's normalized coefficients u: mean m, covariance
    // L L^T + scale_sd^2 m m^T + tau^2 I with L the top `rank` weighted deviations (and, with
    // macs_sd, the direction from m to the MACs).
    std::vector<Eigen::VectorXd> shape(n_use);
    for (int i = 0; i < n_use; ++i) {
      shape[i] = Eigen::Map<const Eigen::VectorXd>(normalized_[use[i]].data(), p);
      if (config.transfer_shape > 0 && k >= 3) {
        const double shrink = k / (k + config.transfer_shape);
        const double beta = std::clamp(1 + shrink * (transfers[use[i]].beta - 1), 0.25, 2.0);
        shape[i] *= beta;
        shape[i](0) += 1 - beta;
      }
    }
    Eigen::VectorXd m = Eigen::VectorXd::Zero(p);
    for (int i = 0; i < n_use; ++i) m += pi[i] * shape[i];
    Eigen::MatrixXd dev(p, n_use);
    for (int i = 0; i < n_use; ++i) {
      const double w = (1 - config.factor_unweighted) * pi[i] + config.factor_unweighted / n_use;
      dev.col(i) = std::sqrt(w) * (shape[i] - m);
    }
    const int rank = std::min({config.rank, n_use, p});
    const std::vector<double>* macs = config.macs_sd > 0 && !Macs().empty() ? &Macs() : nullptr;
    Eigen::MatrixXd L(p, rank + (macs != nullptr ? 1 : 0));
    if (rank > 0) {
      // U_r S_r of dev's SVD as dev V_r, V_r the top eigenvectors of the small Gram matrix
      // dev^T dev (n_use x n_use): the same factor, several times cheaper than a Jacobi SVD of
      // the p x n_use matrix on every fit.
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(dev.transpose() * dev);
      L.leftCols(rank) = dev * eig.eigenvectors().rightCols(rank).rowwise().reverse();
    }
    if (macs != nullptr) {
      L.col(rank) = config.macs_sd * (Eigen::Map<const Eigen::VectorXd>(macs->data(), p) - m);
    }
    const double rms_m = std::sqrt(m.tail(p - 1).squaredNorm() / std::max(p - 1, 1));
    const double tau2 = std::pow(config.deviation_sd * rms_m, 2);

    // Observations: the real samples, then virtual examples.
    std::vector<Architecture> obs_arch;
    std::vector<double> obs_y, obs_sd;
    for (const FunctionSample& s : samples) {
      obs_arch.push_back(s.arch);
      obs_y.push_back(s.latency_ms);
      obs_sd.push_back(config.noise);
    }
    if (virtual_examples && !pool_.empty()) {
      std::vector<int> order(n_refs);
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(),
                [&](int a, int b) { return transfers[a].rms < transfers[b].rms; });
      const int labellers = std::min(config.virtual_label_devices, n_refs);
      const int count = std::min<int>(config.virtual_count, pool_.size());
      for (int v = 0; v < count; ++v) {
        const Architecture& a = pool_[v];
        double log_label = 0;
        for (int j = 0; j < labellers; ++j) {
          const int d = order[j];
          const double ref = std::max(phi_->Dot(a, refs_[d].weights.data()), 1e-9);
          log_label += transfers[d].alpha + transfers[d].beta * std::log(ref);
        }
        obs_arch.push_back(a);
        obs_y.push_back(std::exp(log_label / labellers));
        obs_sd.push_back(config.virtual_noise);
      }
    }
    const int n = static_cast<int>(obs_arch.size());
    // Level: geometric mean of y / (phi . m) over the real samples.
    double log_s = 0;
    for (int i = 0; i < k; ++i) {
      log_s += std::log(obs_y[i] / std::max(phi_->Dot(obs_arch[i], m.data()), 1e-9));
    }
    const double s = std::exp(log_s / k);

    Eigen::MatrixXd Phi = Eigen::MatrixXd::Zero(n, p);
    std::vector<int> active(phi_->active_count());
    for (int i = 0; i < n; ++i) {
      phi_->Active(obs_arch[i], active.data());
      for (int j : active) Phi(i, j) += 1;
    }
    Eigen::VectorXd z(n), noise(n);
    for (int i = 0; i < n; ++i) {
      z(i) = obs_y[i] / s;
      noise(i) = std::pow(obs_sd[i] * z(i), 2);
    }
    const Eigen::VectorXd phim = Phi * m;
    const Eigen::MatrixXd PhiL = Phi * L;
    // Sigma Phi^T = L (Phi L)^T + v m (Phi m)^T + tau^2 Phi^T.
    const double v = config.scale_sd * config.scale_sd;
    Eigen::MatrixXd SigmaPhiT =
        L * PhiL.transpose() + v * m * phim.transpose() + tau2 * Phi.transpose();
    Eigen::MatrixXd K = Phi * SigmaPhiT;
    if (config.noise_ml != 0 && k >= 4) {
      // The real samples' noise by type-II maximum likelihood: the multiple of config.noise
      // under which the k real samples are likeliest under the prior (the virtual examples
      // are left out: their labels are fitted to the same samples).
      const Eigen::VectorXd r = (z - phim).head(k);
      double best = -std::numeric_limits<double>::infinity(), chosen = 1;
      for (double f : {0.25, 0.5, 1.0, 2.0, 4.0}) {
        Eigen::MatrixXd Kf = K.topLeftCorner(k, k);
        Kf.diagonal() += noise.head(k) * (f * f);
        const Eigen::LDLT<Eigen::MatrixXd> ldlt = Kf.ldlt();
        const double log_det = ldlt.vectorD().array().max(1e-300).log().sum();
        const double log_likelihood = -0.5 * (r.dot(ldlt.solve(r)) + log_det);
        if (log_likelihood > best) {
          best = log_likelihood;
          chosen = f;
        }
      }
      for (int i = 0; i < k; ++i) noise(i) *= chosen * chosen;
    }
    K.diagonal() += noise;
    const Eigen::LDLT<Eigen::MatrixXd> K_ldlt = K.ldlt();
    const Eigen::VectorXd alpha_vec = K_ldlt.solve(z - phim);
    const Eigen::VectorXd u = m + SigmaPhiT * alpha_vec;
    Posterior post;
    post.weights.resize(p);
    for (int j = 0; j < p; ++j) post.weights[j] = s * u(j);
    const Eigen::MatrixXd K_inv = K_ldlt.solve(Eigen::MatrixXd::Identity(n, n));
    post.k_inv_diag = K_inv.diagonal();
    post.alpha_vec = alpha_vec;
    post.z = z;
    post.obs_arch = std::move(obs_arch);
    post.obs_y = std::move(obs_y);
    // Leave-one-out log error of the real samples: [K^-1 r]_i / [K^-1]_ii held out.
    for (int i = 0; i < k; ++i) {
      const double held_out = z(i) - alpha_vec(i) / K_inv(i, i);
      const double lp = std::log(std::max(held_out, 1e-9) / z(i));
      post.loo_mse += lp * lp / k;
    }
    return post;
  };
  Posterior post = solve(pi);
  if (weighted && config.loo_weighting != 0 && k >= 4) {
    // The weights' sharpness checked on the target's own samples: the posterior under
    // uniform weights competes by leave-one-out error (1, 3: the better one; 2: both, weighted
    // by inverse leave-one-out mean squared error; both are linear in phi, so is the blend).
    Posterior flat = solve(std::vector<double>(n_use, 1.0 / n_use));
    if (config.loo_weighting == 1 || config.loo_weighting == 3) {
      if (flat.loo_mse < post.loo_mse) post = std::move(flat);
    } else {
      const double a = flat.loo_mse / std::max(flat.loo_mse + post.loo_mse, 1e-300);
      for (int j = 0; j < p; ++j) post.weights[j] = a * post.weights[j] + (1 - a) * flat.weights[j];
    }
  }
  out.weights = post.weights;
  if (config.loo_weighting == 3 && method == Method::kMapleX && k >= 4 &&
      transfers[best].loo_rms * transfers[best].loo_rms < post.loo_mse) {
    // 3, maplex: the best reference's transfer competes too, by the same leave-one-out log
    // error; when it wins, the target is that transfer (the baseline).
    out.transfer_reference = best;
    out.alpha = transfers[best].alpha;
    out.beta = transfers[best].beta;
    out.mix = 1;
    return out;
  }
  const Eigen::VectorXd& z = post.z;
  const Eigen::VectorXd& alpha_vec = post.alpha_vec;
  const std::vector<Architecture>& obs_arch = post.obs_arch;
  const std::vector<double>& obs_y = post.obs_y;

  if (method != Method::kMapleX || k < config.baseline_mix_min_samples) return out;
  double mix = config.baseline_mix;
  if (config.adaptive_mix && k >= 4) {
    // Stacking by leave-one-out error on the real samples: the posterior's held-out
    // residual of sample i is [K^-1 r]_i / [K^-1]_ii (r = z - Phi m), the transfer's
    // e_i / (1 - h_ii); both as log errors. The blend weights the two by inverse mean
    // squared error, so a target whose samples the best reference's transfer explains
    // better leans on it and one no reference resembles keeps the posterior.
    const Transfer& t = transfers[best];
    double x_mean = 0;
    std::vector<double> x(k);
    for (int i = 0; i < k; ++i) {
      x[i] = std::log(std::max(phi_->Dot(obs_arch[i], refs_[best].weights.data()), 1e-9));
      x_mean += x[i] / k;
    }
    double sxx = 0;
    for (int i = 0; i < k; ++i) sxx += (x[i] - x_mean) * (x[i] - x_mean);
    double e_posterior = 0, e_transfer = 0;
    for (int i = 0; i < k; ++i) {
      const double held_out = z(i) - alpha_vec(i) / post.k_inv_diag(i);
      const double lp = std::log(std::max(held_out, 1e-9) / z(i));
      e_posterior += lp * lp;
      const double h = 1.0 / k + (sxx > 1e-12 ? (x[i] - x_mean) * (x[i] - x_mean) / sxx : 0);
      const double e = (std::log(obs_y[i]) - t.alpha - t.beta * x[i]) / std::max(1 - h, 1e-3);
      e_transfer += e * e;
    }
    mix *= e_posterior / std::max(e_posterior + e_transfer, 1e-300);
  }
  if (mix > 0) {
    out.transfer_reference = best;
    out.alpha = transfers[best].alpha;
    out.beta = transfers[best].beta;
    out.mix = mix;
  }
  return out;
}

FunctionDevice FunctionFitter::FitPrior(Method method, const HardwareDescriptor& descriptor,
                                        const FunctionConfig& config) const {
  const int n_refs = static_cast<int>(refs_.size());
  const int p = phi_->dim();
  FunctionDevice out;
  out.weights.assign(p, 0.0);
  if (n_refs == 0) return out;
  std::vector<double> pi(n_refs, 1.0 / n_refs);
  const EncodedDescriptor target = encoder_.Encode(descriptor);
  if ((method == Method::kMapleWeights || method == Method::kMapleX) && target.has_spec()) {
    double total = 0;
    for (int d = 0; d < n_refs; ++d) {
      pi[d] = encoder_.Similarity(target, encoded_[d], config.spec_bandwidth);
      total += pi[d];
    }
    if (total > 0) {
      for (double& v : pi)
        v = (1 - config.unweighted_share) * v / total + config.unweighted_share / n_refs;
    } else {
      pi.assign(n_refs, 1.0 / n_refs);
    }
  }
  // Shape and level apart: the weighted mean of the normalized coefficients, at the weighted
  // geometric mean of the references' levels (an arithmetic mean of raw coefficients would
  // take its shape from the slowest references).
  double log_level = 0;
  for (int d = 0; d < n_refs; ++d) log_level += pi[d] * std::log(levels_[d]);
  const double level = std::exp(log_level);
  for (int d = 0; d < n_refs; ++d) {
    for (int j = 0; j < p; ++j) out.weights[j] += pi[d] * level * normalized_[d][j];
  }
  return out;
}

absl::Status ApplyFunctionConfigOverrides(std::string_view text, FunctionConfig* config) {
  struct Field {
    const char* name;
    double* real;
    int* integer;
  };
  const Field fields[] = {
      {"rank", nullptr, &config->rank},
      {"deviation_sd", &config->deviation_sd, nullptr},
      {"scale_sd", &config->scale_sd, nullptr},
      {"noise", &config->noise, nullptr},
      {"spec_bandwidth", &config->spec_bandwidth, nullptr},
      {"agreement_scale", &config->agreement_scale, nullptr},
      {"unweighted_share", &config->unweighted_share, nullptr},
      {"macs_sd", &config->macs_sd, nullptr},
      {"agreement_mode", nullptr, &config->agreement_mode},
      {"factor_unweighted", &config->factor_unweighted, nullptr},
      {"transfer_shape", &config->transfer_shape, nullptr},
      {"loo_weighting", nullptr, &config->loo_weighting},
      {"noise_ml", nullptr, &config->noise_ml},
      {"virtual_count", nullptr, &config->virtual_count},
      {"virtual_label_devices", nullptr, &config->virtual_label_devices},
      {"virtual_noise", &config->virtual_noise, nullptr},
      {"virtual_min_samples", nullptr, &config->virtual_min_samples},
      {"baseline_mix", &config->baseline_mix, nullptr},
      {"adaptive_mix", nullptr, &config->adaptive_mix},
      {"baseline_mix_min_samples", nullptr, &config->baseline_mix_min_samples},
      {"max_prior_references", nullptr, &config->max_prior_references},
  };
  const std::string copy(text);
  for (absl::string_view item : absl::StrSplit(copy, ',', absl::SkipEmpty())) {
    const std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const Field* field = nullptr;
    for (const Field& f : fields) {
      if (kv[0] == f.name) field = &f;
    }
    if (field == nullptr || kv.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown function-model setting \"", item, "\""));
    }
    const bool ok = field->real != nullptr ? absl::SimpleAtod(kv[1], field->real)
                                           : absl::SimpleAtoi(kv[1], field->integer);
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad value in \"", item, "\""));
  }
  return absl::OkStatus();
}

}  // namespace maplex::core

#pragma once
// Exact marginal fields of Gaussian-mixture data under any Gaussian path (theory.md §8.1):
// p_data = Σ_k π_k N(μ_k, s_k² I_d).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/path/gaussian_path.hpp>

namespace fmd {

/// The data distribution: means d x K, standard deviations s_k (K), weights π_k (K, normalized here).
template <class S>
class GaussianMixture {
public:
    GaussianMixture(Matrix<S> means, Vector<S> stds, Vector<S> weights)
        : means_(std::move(means)), stds_(std::move(stds)), weights_(std::move(weights)) {
        const auto K = means_.cols();
        if (means_.rows() == 0 || K == 0) detail::fail("GaussianMixture", "means", "must be a non-empty d x K matrix");
        if (stds_.size() != K) detail::fail("GaussianMixture", "stds", "must have one entry per component (", K, "), got ", stds_.size());
        if (weights_.size() != K) detail::fail("GaussianMixture", "weights", "must have one entry per component (", K, "), got ", weights_.size());
        if (!means_.allFinite()) detail::fail("GaussianMixture", "means", "must be finite");
        if (!((stds_.array() >= S(0)).all() && stds_.allFinite())) detail::fail("GaussianMixture", "stds", "must be finite and >= 0");
        if (!((weights_.array() > S(0)).all() && weights_.allFinite())) detail::fail("GaussianMixture", "weights", "must be finite and > 0");
        weights_ /= weights_.sum();
        cumulative_.resize(static_cast<std::size_t>(K));
        double acc = 0;
        for (Eigen::Index k = 0; k < K; ++k) cumulative_[static_cast<std::size_t>(k)] = acc += static_cast<double>(weights_(k));
    }

    Eigen::Index dim() const { return means_.rows(); }
    Eigen::Index components() const { return means_.cols(); }
    const Matrix<S>& means() const { return means_; }
    const Vector<S>& stds() const { return stds_; }
    const Vector<S>& weights() const { return weights_; }

    /// Fills every column of out (dim x n) with an independent draw.
    template <Dense O, class G>
    void sample(O&& out, G& rng) const {
        if (out.rows() != dim()) detail::fail("GaussianMixture::sample", "out", "must have ", dim(), " rows, got ", out.rows());
        NormalSampler normal;
        for (Eigen::Index j = 0; j < out.cols(); ++j) {
            const double u = uniform01(rng);
            Eigen::Index k = 0;
            while (k + 1 < components() && u > cumulative_[static_cast<std::size_t>(k)]) ++k;
            for (Eigen::Index i = 0; i < dim(); ++i)
                out(i, j) = means_(i, k) + stds_(k) * static_cast<S>(normal(rng));
        }
    }

    /// 2-D: k equally weighted components of standard deviation `std` on a circle of `radius`.
    static GaussianMixture ring(int k, S radius, S std) {
        Matrix<S> mu(2, k);
        for (int i = 0; i < k; ++i) {
            const double a = 2.0 * std::numbers::pi * i / k;
            mu(0, i) = radius * static_cast<S>(std::cos(a));
            mu(1, i) = radius * static_cast<S>(std::sin(a));
        }
        return GaussianMixture(mu, Vector<S>::Constant(k, std), Vector<S>::Ones(k));
    }

private:
    Matrix<S> means_;
    Vector<S> stds_;
    Vector<S> weights_;
    std::vector<double> cumulative_;
};

/// The closed forms of theory.md §8.1 for a mixture under a Gaussian path: marginal velocity,
/// score, posterior means, log-density and divergence. Per-time quantities are cached, so a
/// call allocates nothing; an oracle object is not safe to share between threads.
template <class Path, class S>
class MixtureOracle {
public:
    MixtureOracle(const Path& path, GaussianMixture<S> mixture)
        : path_(path), mix_(std::move(mixture)), K_(mix_.components()), d_(mix_.dim()),
          log_norm_(K_), inv_v_(K_), c_(K_), logw_(K_), mu_t_(d_, K_), drift_(d_, K_), s_(d_), r_(d_) {}

    const GaussianMixture<S>& mixture() const { return mix_; }
    const Path& path() const { return path_; }

    /// u_t(x) = Σ_k w_k [α̇ μ_k + c_k (x − α μ_k)].
    void velocity(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::velocity");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            posterior(x.col(j));
            S wc = 0;
            out.col(j).setZero();
            for (Eigen::Index k = 0; k < K_; ++k) {
                out.col(j) += logw_(k) * drift_.col(k);
                wc += logw_(k) * c_(k);
            }
            out.col(j) += wc * x.col(j);
        }
    }
    /// s_t(x) = −Σ_k w_k (x − α μ_k)/v_k.
    void score(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::score");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            posterior(x.col(j));
            S wv = 0;
            out.col(j).setZero();
            for (Eigen::Index k = 0; k < K_; ++k) {
                out.col(j) += (logw_(k) * inv_v_(k)) * mu_t_.col(k);
                wv += logw_(k) * inv_v_(k);
            }
            out.col(j) -= wv * x.col(j);
        }
    }
    /// x̂1 = E[z | X_t = x] = Σ_k w_k [μ_k + (α s_k²/v_k)(x − α μ_k)].
    void x1(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::x1");
        const double alpha = c_alpha_;
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            posterior(x.col(j));
            out.col(j).setZero();
            for (Eigen::Index k = 0; k < K_; ++k) {
                const S g = S(alpha) * mix_.stds()(k) * mix_.stds()(k) * inv_v_(k);
                out.col(j) += logw_(k) * (mix_.means().col(k) + g * (x.col(j) - mu_t_.col(k)));
            }
        }
    }
    /// ε̂ = E[ε | X_t = x] = Σ_k w_k (β/v_k)(x − α μ_k).
    void epsilon(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::epsilon");
        const S beta = S(c_beta_);
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            posterior(x.col(j));
            out.col(j).setZero();
            for (Eigen::Index k = 0; k < K_; ++k) out.col(j) += (logw_(k) * beta * inv_v_(k)) * (x.col(j) - mu_t_.col(k));
        }
    }
    /// log p_t(x) per column (theory.md §8.1).
    template <Dense O>
    void log_density(In<S> x, double t, O&& out) {
        if (out.size() != x.cols()) detail::fail("MixtureOracle::log_density", "out", "must hold one value per column (", x.cols(), "), got ", out.size());
        check(x, t, x, "MixtureOracle::log_density");
        for (Eigen::Index j = 0; j < x.cols(); ++j) out(j) = posterior(x.col(j));
    }
    /// div u_t(x) = Σ_k w_k [d c_k + (s_k − s)·u_k] per column (theory.md §8.1).
    template <Dense O>
    void divergence(In<S> x, double t, O&& out) {
        if (out.size() != x.cols()) detail::fail("MixtureOracle::divergence", "out", "must hold one value per column (", x.cols(), "), got ", out.size());
        check(x, t, x, "MixtureOracle::divergence");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            posterior(x.col(j));
            s_.setZero();
            for (Eigen::Index k = 0; k < K_; ++k) s_ -= (logw_(k) * inv_v_(k)) * (x.col(j) - mu_t_.col(k));
            S acc = 0;
            for (Eigen::Index k = 0; k < K_; ++k) {
                // s_k − s = −(x − αμ_k)/v_k − s;  u_k = drift_k + c_k x
                r_ = -inv_v_(k) * (x.col(j) - mu_t_.col(k)) - s_;
                acc += logw_(k) * (S(d_) * c_(k) + r_.dot(drift_.col(k) + c_(k) * x.col(j)));
            }
            out(j) = acc;
        }
    }

    /// Views usable wherever a VectorField / ScoreField is expected.
    auto velocity_field() {
        return [this](In<S> x, double t, Out<S> out) { velocity(x, t, out); };
    }
    auto score_field() {
        return [this](In<S> x, double t, Out<S> out) { score(x, t, out); };
    }

private:
    template <class O>
    void check(const In<S>& x, double t, const O& out, const char* where) {
        detail::require_time(where, "t", t);
        if (x.rows() != d_) detail::fail(where, "x", "must have ", d_, " rows (the mixture's dim), got ", x.rows());
        detail::require_same_shape(where, "x", x, "out", out);
        if (t != cached_t_) prepare(t);
    }

    void prepare(double t) {
        const auto c = path_.coefficients(t);
        c_alpha_ = c.alpha;
        c_beta_ = c.beta;
        for (Eigen::Index k = 0; k < K_; ++k) {
            const double sk = static_cast<double>(mix_.stds()(k));
            const double v = c.alpha * c.alpha * sk * sk + c.beta * c.beta;
            if (!(v > 0.0)) detail::fail("MixtureOracle", "t", "makes component ", k, " a point mass (v_k = 0 at t = ", t, "): the marginal fields are singular there");
            const double ck = (c.alpha * c.d_alpha * sk * sk + c.beta * c.d_beta) / v;
            inv_v_(k) = S(1.0 / v);
            c_(k) = S(ck);
            log_norm_(k) = S(std::log(static_cast<double>(mix_.weights()(k))) - 0.5 * static_cast<double>(d_) * std::log(2.0 * std::numbers::pi * v));
            mu_t_.col(k) = S(c.alpha) * mix_.means().col(k);
            drift_.col(k) = S(c.d_alpha - ck * c.alpha) * mix_.means().col(k);  // u_k = drift_k + c_k x
        }
        cached_t_ = t;
    }

    /// Posterior weights w_k(x) into logw_; returns log p_t(x).
    template <class Col>
    S posterior(const Col& x) {
        S best = -std::numeric_limits<S>::infinity();
        for (Eigen::Index k = 0; k < K_; ++k) {
            logw_(k) = log_norm_(k) - S(0.5) * inv_v_(k) * (x - mu_t_.col(k)).squaredNorm();
            best = std::max(best, logw_(k));
        }
        S total = 0;
        for (Eigen::Index k = 0; k < K_; ++k) total += (logw_(k) = std::exp(logw_(k) - best));
        logw_ /= total;
        return best + std::log(total);
    }

    Path path_;
    GaussianMixture<S> mix_;
    Eigen::Index K_, d_;
    Vector<S> log_norm_, inv_v_, c_, logw_;
    Matrix<S> mu_t_, drift_;
    Vector<S> s_, r_;
    double cached_t_ = -1.0, c_alpha_ = 0.0, c_beta_ = 1.0;
};

}  // namespace fmd

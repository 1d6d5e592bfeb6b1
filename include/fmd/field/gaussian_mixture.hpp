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
    /// means d × K, stds K (≥ 0), weights K (> 0, normalized here); throws fmd::invalid_argument naming
    /// 'means', 'stds' or 'weights' on a wrong size or a non-finite or out-of-range entry.
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

    /// d, the dimension.
    Eigen::Index dim() const { return means_.rows(); }
    /// K, the number of components.
    Eigen::Index components() const { return means_.cols(); }
    /// Component means μ_k, d × K.
    const Matrix<S>& means() const { return means_; }
    /// Isotropic standard deviations s_k, K entries.
    const Vector<S>& stds() const { return stds_; }
    /// Normalized weights π_k, K entries.
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
/// The per-column kernels are plain loops over contiguous columns: this is the hot path of
/// every oracle-driven sampler and benchmark.
template <class Path, class S>
class MixtureOracle {
public:
    /// The path (copied) and the data mixture.
    MixtureOracle(const Path& path, GaussianMixture<S> mixture)
        : path_(path), mix_(std::move(mixture)), K_(mix_.components()), d_(mix_.dim()),
          log_norm_(K_), inv_v_(K_), c_(K_), w_(K_), gain_(K_), mu_t_(d_, K_), drift_(d_, K_), s_(d_) {}

    /// The data mixture.
    const GaussianMixture<S>& mixture() const { return mix_; }
    /// The path.
    const Path& path() const { return path_; }

    /// u_t(x) = Σ_k w_k [α̇ μ_k + c_k (x − α μ_k)] = Σ_k w_k drift_k + (Σ_k w_k c_k) x.
    void velocity(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::velocity");
        // Small dimensions get a fully unrolled kernel (the 2-D toys are the common case).
        switch (d_) {
            case 1: velocity_kernel<1>(x, out); break;
            case 2: velocity_kernel<2>(x, out); break;
            case 3: velocity_kernel<3>(x, out); break;
            default: velocity_kernel<0>(x, out); break;
        }
    }
    /// s_t(x) = −Σ_k w_k (x − α μ_k)/v_k.
    void score(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::score");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const S* xj = x.data() + j * x.outerStride();
            S* oj = out.data() + j * out.outerStride();
            posterior(xj);
            S wv = 0;
            for (Eigen::Index i = 0; i < d_; ++i) oj[i] = 0;
            for (Eigen::Index k = 0; k < K_; ++k) {
                const S g = w_(k) * inv_v_(k);
                const S* mk = &mu_t_(0, k);
                wv += g;
                for (Eigen::Index i = 0; i < d_; ++i) oj[i] += g * mk[i];
            }
            for (Eigen::Index i = 0; i < d_; ++i) oj[i] -= wv * xj[i];
        }
    }
    /// x̂1 = E[z | X_t = x] = Σ_k w_k [μ_k + (α s_k²/v_k)(x − α μ_k)].
    void x1(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::x1");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const S* xj = x.data() + j * x.outerStride();
            S* oj = out.data() + j * out.outerStride();
            posterior(xj);
            for (Eigen::Index i = 0; i < d_; ++i) oj[i] = 0;
            for (Eigen::Index k = 0; k < K_; ++k) {
                const S wk = w_(k), g = gain_(k);
                for (Eigen::Index i = 0; i < d_; ++i) oj[i] += wk * (mix_.means()(i, k) + g * (xj[i] - mu_t_(i, k)));
            }
        }
    }
    /// ε̂ = E[ε | X_t = x] = Σ_k w_k (β/v_k)(x − α μ_k).
    void epsilon(In<S> x, double t, Out<S> out) {
        check(x, t, out, "MixtureOracle::epsilon");
        const S beta = S(c_beta_);
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const S* xj = x.data() + j * x.outerStride();
            S* oj = out.data() + j * out.outerStride();
            posterior(xj);
            for (Eigen::Index i = 0; i < d_; ++i) oj[i] = 0;
            for (Eigen::Index k = 0; k < K_; ++k) {
                const S g = w_(k) * beta * inv_v_(k);
                for (Eigen::Index i = 0; i < d_; ++i) oj[i] += g * (xj[i] - mu_t_(i, k));
            }
        }
    }
    /// log p_t(x) per column (theory.md §8.1).
    template <Dense O>
    void log_density(In<S> x, double t, O&& out) {
        if (out.size() != x.cols()) detail::fail("MixtureOracle::log_density", "out", "must hold one value per column (", x.cols(), "), got ", out.size());
        check(x, t, x, "MixtureOracle::log_density");
        for (Eigen::Index j = 0; j < x.cols(); ++j) out(j) = posterior(x.data() + j * x.outerStride());
    }
    /// div u_t(x) = Σ_k w_k [d c_k + (s_k − s)·u_k] per column (theory.md §8.1).
    template <Dense O>
    void divergence(In<S> x, double t, O&& out) {
        if (out.size() != x.cols()) detail::fail("MixtureOracle::divergence", "out", "must hold one value per column (", x.cols(), "), got ", out.size());
        check(x, t, x, "MixtureOracle::divergence");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const S* xj = x.data() + j * x.outerStride();
            posterior(xj);
            s_.setZero();  // marginal score s
            for (Eigen::Index k = 0; k < K_; ++k)
                for (Eigen::Index i = 0; i < d_; ++i) s_(i) -= w_(k) * inv_v_(k) * (xj[i] - mu_t_(i, k));
            S acc = 0;
            for (Eigen::Index k = 0; k < K_; ++k) {
                S dot = 0;  // (s_k − s)·u_k with s_k = −(x − αμ_k)/v_k, u_k = drift_k + c_k x
                for (Eigen::Index i = 0; i < d_; ++i)
                    dot += (-inv_v_(k) * (xj[i] - mu_t_(i, k)) - s_(i)) * (drift_(i, k) + c_(k) * xj[i]);
                acc += w_(k) * (S(d_) * c_(k) + dot);
            }
            out(j) = acc;
        }
    }

    /// Views usable wherever a VectorField / ScoreField is expected.
    auto velocity_field() {
        return [this](In<S> x, double t, Out<S> out) { velocity(x, t, out); };
    }
    /// A ScoreField lambda calling score() (holds this oracle by reference).
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
        c_beta_ = c.beta;
        for (Eigen::Index k = 0; k < K_; ++k) {
            const double sk = static_cast<double>(mix_.stds()(k));
            const double v = c.alpha * c.alpha * sk * sk + c.beta * c.beta;
            if (!(v > 0.0)) detail::fail("MixtureOracle", "t", "makes component ", k, " a point mass (v_k = 0 at t = ", t, "): the marginal fields are singular there");
            const double ck = (c.alpha * c.d_alpha * sk * sk + c.beta_d_beta) / v;
            inv_v_(k) = S(1.0 / v);
            c_(k) = S(ck);
            gain_(k) = S(c.alpha * sk * sk / v);
            log_norm_(k) = S(std::log(static_cast<double>(mix_.weights()(k))) - 0.5 * static_cast<double>(d_) * std::log(2.0 * std::numbers::pi * v));
            mu_t_.col(k) = S(c.alpha) * mix_.means().col(k);
            drift_.col(k) = S(c.d_alpha - ck * c.alpha) * mix_.means().col(k);
        }
        cached_t_ = t;
    }

    /// Posterior weights w_k = p(k | x) into w_; returns log p_t(x). D > 0 fixes the dimension
    /// at compile time (D = 0 uses d_). Normalize = false leaves w_ unnormalized and puts
    /// 1/Σ_k w_k in inv_total_, for kernels that fold the division into their last multiply.
    template <int D = 0, bool Normalize = true>
    S posterior(const S* __restrict x) {
        const Eigen::Index d = D > 0 ? D : d_;
        const S* __restrict mu = mu_t_.data();
        const S* __restrict lnorm = log_norm_.data();
        const S* __restrict iv = inv_v_.data();
        S* __restrict w = w_.data();
        S best = -std::numeric_limits<S>::infinity();
        for (Eigen::Index k = 0; k < K_; ++k) {
            S r2 = 0;
            for (Eigen::Index i = 0; i < d; ++i) r2 += (x[i] - mu[k * d + i]) * (x[i] - mu[k * d + i]);
            w[k] = lnorm[k] - S(0.5) * iv[k] * r2;
            best = std::max(best, w[k]);
        }
        S total = 0;
        for (Eigen::Index k = 0; k < K_; ++k) total += (w[k] = std::exp(w[k] - best));
        inv_total_ = S(1) / total;
        if constexpr (Normalize)
            for (Eigen::Index k = 0; k < K_; ++k) w[k] *= inv_total_;
        return best + std::log(total);
    }

    template <int D>
    void velocity_kernel(const In<S>& x, Out<S>& out) {
        const Eigen::Index d = D > 0 ? D : d_;
        const S* __restrict drift = drift_.data();
        const S* __restrict c = c_.data();
        const S* __restrict w = w_.data();
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const S* __restrict xj = x.data() + j * x.outerStride();
            S* __restrict oj = out.data() + j * out.outerStride();
            posterior<D, false>(xj);
            S wc = 0;
            for (Eigen::Index i = 0; i < d; ++i) oj[i] = 0;
            for (Eigen::Index k = 0; k < K_; ++k) {
                wc += w[k] * c[k];
                for (Eigen::Index i = 0; i < d; ++i) oj[i] += w[k] * drift[k * d + i];
            }
            const S inv = inv_total_;
            for (Eigen::Index i = 0; i < d; ++i) oj[i] = inv * (oj[i] + wc * xj[i]);
        }
    }

    Path path_;
    GaussianMixture<S> mix_;
    Eigen::Index K_, d_;
    Vector<S> log_norm_, inv_v_, c_, w_, gain_;
    Matrix<S> mu_t_, drift_;
    Vector<S> s_;
    S inv_total_ = 1;
    double cached_t_ = -1.0, c_beta_ = 1.0;
};

}  // namespace fmd

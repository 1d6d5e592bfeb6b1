#pragma once
// Field adapters: re-parameterize a field through a Gaussian path (theory.md §5.2) and build
// the SDE drift u + σ_t²/2·s (theory.md §3.7, §7.6). They hold the path by value (a path is a
// few doubles; a temporary path stays valid) and the field by reference (no copy of a network).
#include <cmath>
#include <utility>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/path/gaussian_path.hpp>

namespace fmd {

/// A field predicting `from`, seen as a field predicting `to` (theory.md §5.2):
/// out = a_t x + b_t f(x). Evaluates f straight into out; one NFE per call.
template <class Path, class F>
class Reparameterized {
public:
    /// Holds `path` by value and `field` by reference; the field predicts `from`, calls return `to`.
    Reparameterized(Path path, F& field, Prediction from, Prediction to)
        : path_(std::move(path)), field_(&field), from_(from), to_(to) {}

    /// out = a_t x + b_t f(x, t) for the batch x (dim × n) at time t; throws fmd::invalid_argument naming 't'
    /// at a singular point of the conversion (theory.md §5.3).
    template <class S>
    void operator()(const Eigen::Ref<const Matrix<S>>& x, double t, Eigen::Ref<Matrix<S>> out) {
        const Affine m = fmd::conversion(path_, from_, to_, t);  // throws at singular points
        (*field_)(x, t, out);
        out = S(m.a) * x + S(m.b) * out;
    }

private:
    Path path_;
    F* field_;
    Prediction from_, to_;
};

/// Velocity from a score field, u = (α̇/α) x + (βD/α) s; singular at α = 0 (t = 0 for exact BCs).
template <class Path, class F>
Reparameterized<Path, F> score_to_velocity(const Path& path, F& score) {
    return {path, score, Prediction::score, Prediction::velocity};
}
/// Score from a velocity field, s = (α u − α̇ x)/(βD); singular at β = 0 (t = 1).
template <class Path, class F>
Reparameterized<Path, F> velocity_to_score(const Path& path, F& velocity) {
    return {path, velocity, Prediction::velocity, Prediction::score};
}
/// Any prediction to any other.
template <class Path, class F>
Reparameterized<Path, F> reparameterize(const Path& path, F& field, Prediction from, Prediction to) {
    return {path, field, from, to};
}

/// σ_t ≡ c (theory.md §7.7).
struct ConstantSigma {
    /// σ, ≥ 0.
    double value = 0.0;
    /// Throws fmd::invalid_argument naming 'sigma' unless c is finite and ≥ 0.
    explicit ConstantSigma(double c) : value(c) {
        if (!(c >= 0.0) || !std::isfinite(c)) detail::fail("ConstantSigma", "sigma", "must be finite and >= 0, got ", c);
    }
    /// σ_t = c for every t.
    double operator()(double) const { return value; }
};

/// SDE drift b = u + (σ_t²/2) s with s converted from u through the path (theory.md §7.6):
/// b = (1 + σ²/2·b_us) u + σ²/2·a_us x. One NFE; singular where βD = 0 (t = 1 for linear).
template <class Path, class F, SigmaPolicy Sigma>
class SdeDrift {
public:
    /// Holds `path` by value, the velocity field by reference, the σ policy by value.
    SdeDrift(Path path, F& velocity, Sigma sigma) : path_(std::move(path)), field_(&velocity), sigma_(std::move(sigma)) {}

    /// out = u(x, t) + σ_t²/2 · s(x, t), s from u through the path (theory.md §7.6); throws
    /// fmd::invalid_argument naming 't' where the velocity-to-score conversion is singular (σ_t > 0 only).
    template <class S>
    void operator()(const Eigen::Ref<const Matrix<S>>& x, double t, Eigen::Ref<Matrix<S>> out) {
        (*field_)(x, t, out);
        const double half_var = 0.5 * sigma_(t) * sigma_(t);
        if (half_var == 0.0) return;
        const Affine m = fmd::conversion(path_, Prediction::velocity, Prediction::score, t);
        out = S(1.0 + half_var * m.b) * out + S(half_var * m.a) * x;
    }
    /// The σ_t policy.
    const Sigma& sigma() const { return sigma_; }

private:
    Path path_;
    F* field_;
    Sigma sigma_;
};

/// SDE drift b = u + (σ_t²/2) s from separate velocity and score fields (two NFE per call);
/// owns one dim x n buffer, sized on the first call.
template <class S, class U, class Sc, SigmaPolicy Sigma>
class SdeDriftFromScore {
public:
    /// Holds both fields by reference and the σ policy by value.
    SdeDriftFromScore(U& velocity, Sc& score, Sigma sigma) : u_(&velocity), s_(&score), sigma_(std::move(sigma)) {}

    /// out = u(x, t) + σ_t²/2 · s(x, t) for the batch x (dim × n); two NFE unless σ_t = 0.
    void operator()(const Eigen::Ref<const Matrix<S>>& x, double t, Eigen::Ref<Matrix<S>> out) {
        (*u_)(x, t, out);
        const double half_var = 0.5 * sigma_(t) * sigma_(t);
        if (half_var == 0.0) return;
        if (buffer_.rows() != x.rows() || buffer_.cols() != x.cols()) buffer_.resize(x.rows(), x.cols());
        (*s_)(x, t, Eigen::Ref<Matrix<S>>(buffer_));
        out += S(half_var) * buffer_;
    }
    /// The σ_t policy.
    const Sigma& sigma() const { return sigma_; }

private:
    U* u_;
    Sc* s_;
    Sigma sigma_;
    Matrix<S> buffer_;
};

}  // namespace fmd

#pragma once
// Exact likelihoods by the instantaneous change of variables (theory.md §8.4): along an ODE
// solution d/dt log p_t(X_t) = −div u_t(X_t), so for a data point x, solving the augmented ODE
//   d/dt [X; a] = [u_t(X); div u_t(X)],   X_1 = x, a_1 = 0,
// backward from t = 1 to t = 0 gives Δ = ∫_0^1 div u_t(X_t) dt = −a_0 and
//   log p_1(x) = log N(X_0; 0, I) − Δ = −(d/2) log 2π − ‖X_0‖²/2 − Δ.
// (The base density is the library's p_init = N(0, I): exact for schedules with α_0 = 0, β_0 = 1.)
//
// Divergence policies:
//  - ExactDivergence: tr J from d Jacobian–vector products along the basis vectors. A field
//    with f.jvp(x, t, v, out) (the JvpField concept) supplies them; any other field gets
//    central differences J e_i ≈ (u(x + δ e_i) − u(x − δ e_i))/(x_i⁺ − x_i⁻) with
//    δ_j = fd_step · max(1, ‖x_j‖_∞) per column j, fd_step = ∛ε of the scalar by default
//    (error O(δ²) truncation + O(ε/δ) rounding, both ≈ ε^(2/3)); the denominator is the
//    difference of the rounded perturbed coordinates, not 2δ.
//  - HutchinsonDivergence: div u ≈ (1/P) Σ_p v_pᵀ J v_p with P Rademacher probes per column,
//    drawn once per solve from fmd::Rng(seed) and held fixed along the trajectory (so the ODE
//    stays smooth for adaptive steps and the estimate of Δ is unbiased); J v_p by jvp or by
//    central differences (u(x + δ v) − u(x − δ v))/(2δ).
//
// Cost per evaluation of the augmented field (stats.nfe counts these):
//   exact, central differences   2d + 1 field calls      exact, jvp        1 field call + d jvps
//   Hutchinson, differences      2P + 1 field calls      Hutchinson, jvp   1 field call + P jvps
// Likelihood::field_evals and ::jvp_evals report the totals.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/dopri5.hpp>
#include <fmd/solver/grid.hpp>
#include <fmd/solver/integrate.hpp>

namespace fmd {

/// A field that also gives Jacobian–vector products: f.jvp(x, t, v, out) writes
/// (∂u_t/∂x)(x_j) v_j into column j of out.
template <class F, class S>
concept JvpField = VectorField<F, S> && requires(F& f, In<S> x, double t, In<S> v, Out<S> out) { f.jvp(x, t, v, out); };

/// tr J by d JVPs along the basis vectors (jvp if the field has one, else central differences).
struct ExactDivergence {
    double fd_step = 0.0;  ///< relative central-difference step; 0 = ∛(machine epsilon of S)
};

/// Hutchinson's estimator with `probes` Rademacher probes per column, drawn from fmd::Rng(seed).
struct HutchinsonDivergence {
    long probes = 1;  ///< Rademacher probes per column (≥ 1)
    std::uint64_t seed = 0;  ///< seed of the probes' generator
    double fd_step = 0.0;  ///< as in ExactDivergence
};

/// Fills m with independent ±1 entries, 64 per generator draw (same seed, same signs).
template <class S, class G>
void fill_rademacher(Matrix<S>& m, G& rng) {
    std::uint64_t bits = 0;
    int left = 0;
    for (Eigen::Index i = 0; i < m.size(); ++i) {
        if (left == 0) {
            bits = static_cast<std::uint64_t>(rng());
            left = 64;
        }
        m.data()[i] = (bits & 1u) != 0 ? S(1) : S(-1);
        bits >>= 1;
        --left;
    }
}

/// The augmented field [X; a] ↦ [u_t(X); div u_t(X)] of theory.md §8.4 on (d + 1) × n states,
/// with the divergence by `Policy`. Owns its buffers (sized on first use) and counts the calls
/// it makes to the wrapped field. Wraps `field` by reference.
template <class S, class F, class Policy = ExactDivergence>
class LikelihoodField {
public:
    static constexpr bool hutchinson = std::is_same_v<Policy, HutchinsonDivergence>;  ///< whether the divergence is estimated (Hutchinson) or exact
    static_assert(hutchinson || std::is_same_v<Policy, ExactDivergence>, "Policy must be ExactDivergence or HutchinsonDivergence");

    /// Wraps `field` by reference; throws fmd::invalid_argument naming 'fd_step' (negative or not finite) or
    /// 'probes' (< 1).
    LikelihoodField(F& field, Policy policy) : field_(&field), policy_(policy), rng_(seed_of(policy)) {
        constexpr const char* where = "LikelihoodField";
        if (!(policy_.fd_step >= 0.0) || !std::isfinite(policy_.fd_step))
            detail::fail(where, "fd_step", "must be finite and >= 0 (0 = automatic), got ", policy_.fd_step);
        if constexpr (hutchinson) detail::require_positive_count(where, "probes", policy_.probes);
        rel_step_ = policy_.fd_step > 0.0 ? policy_.fd_step : std::cbrt(static_cast<double>(std::numeric_limits<S>::epsilon()));
    }

    /// Hutchinson: draws the probes for d × n batches (fixed until the next call). Exact: no-op.
    void draw_probes(Eigen::Index d, Eigen::Index n) {
        if constexpr (hutchinson) {
            probes_.resize(d, n * policy_.probes);
            fill_rademacher(probes_, rng_);
        } else {
            (void)d;
            (void)n;
        }
    }

    /// u_t(x) into u (d × n) and div u_t(x) into div (n). Hutchinson probes are drawn first if
    /// none fit the shape of x.
    void evaluate(In<S> x, double t, Out<S> u, Eigen::Ref<Vector<double>> div) {
        constexpr const char* where = "LikelihoodField::evaluate";
        detail::require_nonempty(where, "x", x);
        detail::require_same_shape(where, "x", x, "u", u);
        if (div.size() != x.cols()) detail::fail(where, "div", "must hold one value per column (", x.cols(), "), got ", div.size());
        fit(x.rows(), x.cols());
        x_ = x;
        compute(t);
        u = u_;
        div = div_;
    }

    /// z = [x; a], (d + 1) × n  ↦  out = [u_t(x); div u_t(x)].
    void operator()(In<S> z, double t, Out<S> out) {
        constexpr const char* where = "LikelihoodField";
        if (z.rows() < 2 || z.cols() == 0) detail::fail(where, "z", "must be a (d + 1) x n augmented state with d >= 1, got ", z.rows(), " x ", z.cols());
        detail::require_same_shape(where, "z", z, "out", out);
        const Eigen::Index d = z.rows() - 1;
        fit(d, z.cols());
        x_ = z.topRows(d);  // contiguous copy: the field sees an ordinary d × n batch
        compute(t);
        out.topRows(d) = u_;
        out.row(d) = div_.transpose().template cast<S>();
    }

    /// Calls made to the wrapped field so far.
    long field_evals() const { return field_evals_; }
    /// Jacobian-vector products taken so far (the field's jvp, or finite differences).
    long jvp_evals() const { return jvp_evals_; }

private:
    static std::uint64_t seed_of(const Policy& p) {
        if constexpr (hutchinson) return p.seed;
        else return 0;
    }

    void fit(Eigen::Index d, Eigen::Index n) {
        for (Matrix<S>* m : {&x_, &u_, &xp_, &xm_, &up_, &um_})
            if (m->rows() != d || m->cols() != n) m->resize(d, n);
        if (div_.size() != n) {
            div_.resize(n);
            step_.resize(n);
        }
        if constexpr (hutchinson)
            if (probes_.rows() != d || probes_.cols() != n * policy_.probes) draw_probes(d, n);
    }

    void call(const Matrix<S>& x, double t, Matrix<S>& out) {
        (*field_)(In<S>(x), t, Out<S>(out));
        ++field_evals_;
    }
    void call_jvp(const Matrix<S>& x, double t, const Eigen::Ref<const Matrix<S>>& v, Matrix<S>& out) {
        field_->jvp(In<S>(x), t, v, Out<S>(out));
        ++jvp_evals_;
    }

    /// u_ = u(x_, t), div_ = div u(x_, t) per column by the policy.
    void compute(double t) {
        const Eigen::Index d = x_.rows(), n = x_.cols();
        call(x_, t, u_);
        div_.setZero();
        for (Eigen::Index j = 0; j < n; ++j) step_(j) = rel_step_ * std::max(1.0, static_cast<double>(x_.col(j).cwiseAbs().maxCoeff()));
        constexpr bool jvp = JvpField<F, S>;
        if constexpr (!hutchinson) {
            if constexpr (jvp) {
                xp_.setZero();  // xp_ holds the basis direction e_i in every column
                for (Eigen::Index i = 0; i < d; ++i) {
                    xp_.row(i).setOnes();
                    call_jvp(x_, t, xp_, up_);
                    for (Eigen::Index j = 0; j < n; ++j) div_(j) += static_cast<double>(up_(i, j));
                    xp_.row(i).setZero();
                }
            } else {
                xp_ = x_;
                xm_ = x_;
                for (Eigen::Index i = 0; i < d; ++i) {
                    for (Eigen::Index j = 0; j < n; ++j) {
                        xp_(i, j) = static_cast<S>(static_cast<double>(x_(i, j)) + step_(j));
                        xm_(i, j) = static_cast<S>(static_cast<double>(x_(i, j)) - step_(j));
                    }
                    call(xp_, t, up_);
                    call(xm_, t, um_);
                    for (Eigen::Index j = 0; j < n; ++j)
                        div_(j) += (static_cast<double>(up_(i, j)) - static_cast<double>(um_(i, j))) /
                                   (static_cast<double>(xp_(i, j)) - static_cast<double>(xm_(i, j)));
                    xp_.row(i) = x_.row(i);
                    xm_.row(i) = x_.row(i);
                }
            }
        } else {
            const double inv_p = 1.0 / static_cast<double>(policy_.probes);
            for (long p = 0; p < policy_.probes; ++p) {
                const auto v = probes_.middleCols(p * n, n);
                if constexpr (jvp) {
                    call_jvp(x_, t, v, up_);
                    for (Eigen::Index j = 0; j < n; ++j)
                        div_(j) += inv_p * static_cast<double>(v.col(j).dot(up_.col(j)));
                } else {
                    for (Eigen::Index j = 0; j < n; ++j) {
                        xp_.col(j) = x_.col(j) + S(step_(j)) * v.col(j);
                        xm_.col(j) = x_.col(j) - S(step_(j)) * v.col(j);
                    }
                    call(xp_, t, up_);
                    call(xm_, t, um_);
                    for (Eigen::Index j = 0; j < n; ++j)
                        div_(j) += inv_p * static_cast<double>(v.col(j).dot(up_.col(j) - um_.col(j))) / (2.0 * step_(j));
                }
            }
        }
    }

    F* field_;
    Policy policy_;
    Rng rng_;
    double rel_step_ = 0.0;
    long field_evals_ = 0, jvp_evals_ = 0;
    Matrix<S> x_, u_, xp_, xm_, up_, um_, probes_;
    Vector<double> div_, step_;
};

/// div u_t(x) per column by the policy (a fresh estimator: Hutchinson draws new probes from
/// its seed on every call).
template <class S, class F, class Policy = ExactDivergence>
Vector<double> divergence(F& field, const Matrix<S>& x, double t, Policy policy = {}) {
    LikelihoodField<S, F, Policy> aug(field, policy);
    Matrix<S> u(x.rows(), x.cols());
    Vector<double> div(x.cols());
    aug.evaluate(x, t, u, div);
    return div;
}

/// Result of log_likelihood.
template <class S>
struct Likelihood {
    Vector<double> log_p;   ///< log p_1(x) per column
    Vector<double> delta;   ///< Δ = ∫_0^1 div u_t(X_t) dt per column
    Matrix<S> x0;           ///< X_0: the points carried back to t = 0
    SolveStats stats;       ///< of the augmented ODE; nfe counts augmented-field evaluations
    long field_evals = 0;   ///< calls of the field (finite differences included)
    long jvp_evals = 0;     ///< calls of field.jvp
};

namespace detail {
template <class S>
Matrix<S> augmented_start(const char* where, const Matrix<S>& x) {
    require_nonempty(where, "x", x);
    require_finite(where, "x", x);
    Matrix<S> z(x.rows() + 1, x.cols());
    z.topRows(x.rows()) = x;
    z.row(x.rows()).setZero();
    return z;
}

template <class S, class Aug>
Likelihood<S> finish(const Matrix<S>& z, const Aug& aug, SolveStats stats) {
    const Eigen::Index d = z.rows() - 1;
    Likelihood<S> r;
    r.x0 = z.topRows(d);
    r.delta = -z.row(d).transpose().template cast<double>();  // a_0 = ∫_1^0 div u dt = −Δ
    r.log_p.resize(z.cols());
    const double log_norm = -0.5 * static_cast<double>(d) * std::log(2.0 * std::numbers::pi);
    for (Eigen::Index j = 0; j < z.cols(); ++j)
        r.log_p(j) = log_norm - 0.5 * r.x0.col(j).template cast<double>().squaredNorm() - r.delta(j);
    r.stats = stats;
    r.field_evals = aug.field_evals();
    r.jvp_evals = aug.jvp_evals();
    return r;
}
}  // namespace detail

/// A progress report that ignores everything (log_likelihood's default).
struct NoProgress {
    /// Ignores (done, total).
    void operator()(std::int64_t, std::int64_t) const {}
};

/// log p_1(x) per column (theory.md §8.4), integrating the augmented ODE backward from t = 1 to 0
/// along the increasing grid (from 0 to 1, validated): a fixed-step OdeStepper takes one step per
/// interval (it must accept negative steps), an AdaptiveStepper chooses its own steps (the
/// divergence row is part of its error norm). stats.nfe counts augmented-field evaluations as
/// integrate does. `progress(done, total)` is called after each fixed step (fmd::ProgressLine
/// fits; an adaptive solve reports once, at the end).
template <class St, class F, class Policy = ExactDivergence, class Progress = NoProgress>
    requires solver::OdeStepper<St> || solver::AdaptiveStepper<St>
Likelihood<typename St::Scalar> log_likelihood(F& field, const Matrix<typename St::Scalar>& x, const std::vector<double>& grid, St& stepper,
                                               Policy policy = {}, Progress&& progress = {}) {
    using S = typename St::Scalar;
    constexpr const char* where = "log_likelihood";
    static_assert(!solver::forward_only<St>(), "fmd::log_likelihood: the stepper only steps forward in time; the likelihood integrates backward");
    grid::validate(grid, where);
    if (grid.front() != 0.0 || grid.back() != 1.0)
        detail::fail(where, "grid", "must run from 0 to 1 (the base density N(0, I) lives at t = 0), got [", grid.front(), ", ", grid.back(), "]");
    Matrix<S> z = detail::augmented_start(where, x);
    LikelihoodField<S, F, Policy> aug(field, policy);
    aug.draw_probes(x.rows(), x.cols());
    if constexpr (solver::AdaptiveStepper<St>) {
        const std::vector<double> backward(grid.rbegin(), grid.rend());
        const SolveStats stats = stepper.integrate(aug, z, backward, NoObserver{});
        progress(std::int64_t{1}, std::int64_t{1});
        return detail::finish(z, aug, stats);
    } else {
        detail::reset_stepper(stepper);  // a multistep history must not leak in from another solve
        SolveStats stats;
        for (std::size_t k = grid.size() - 1; k > 0; --k) {
            stepper.step(aug, Out<S>(z), grid[k], grid[k - 1] - grid[k]);
            stats.nfe += detail::step_nfe(stepper);
            ++stats.steps;
            progress(static_cast<std::int64_t>(stats.steps), static_cast<std::int64_t>(grid.size() - 1));
        }
        return detail::finish(z, aug, stats);
    }
}

/// log p_1(x) per column with an adaptive stepper from t = 1 straight to t = 0.
template <solver::AdaptiveStepper St, class F, class Policy = ExactDivergence>
Likelihood<typename St::Scalar> log_likelihood(F& field, const Matrix<typename St::Scalar>& x, St& stepper, Policy policy = {}) {
    return log_likelihood(field, x, std::vector<double>{0.0, 1.0}, stepper, policy);
}

}  // namespace fmd

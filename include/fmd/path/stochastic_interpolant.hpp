#pragma once
// A stochastic interpolant (Albergo & Vanden-Eijnden, theory.md §1, reference [AV23]) with a latent
// noise term:
//   x_t = α_t z + β_t ε + γ_t ξ,   γ_t = a·t(1 − t),   ξ ~ N(0, I) drawn per sample,
//   u_t(x_t|ε, z, ξ) = α̇_t z + β̇_t ε + γ̇_t ξ.
// It models ProbabilityPath but not GaussianProbabilityPath (it has no coefficients(t): the
// regression target depends on ξ, which the sampler draws), so it trains with the CFM loss only.
// The latent term widens the bridge in the middle of [0, 1] while keeping the end points
// (γ_0 = γ_1 = 0), so the learned field still carries N(0, I) to the data.
//
// Its marginal velocity equals that of the Gaussian path with the same α and β̄_t = √(β_t² + γ_t²)
// (given z, x_t is Gaussian with that variance, and E[β̇ε + γ̇ξ | x_t, z] = (ββ̇ + γγ̇)/β̄² (x_t − αz) =
// β̄̇/β̄ (x_t − αz)): equivalent_schedule() returns that schedule, an exact oracle for tests.
#include <cmath>
#include <utility>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/schedule/concepts.hpp>

namespace fmd {

/// Stochastic interpolant x_t = α_t z + β_t ε + γ_t ξ with latent noise γ_t = a·t(1 − t), ξ ~ N(0, I)
/// per sample (theory.md §1, [AV23]). A ProbabilityPath but not a Gaussian one: trains with the CFM
/// loss only; its marginal velocity is that of the Gaussian path equivalent_schedule().
template <schedule::Schedule Sched>
class StochasticInterpolant {
public:
    /// a ≥ 0 scales the latent noise (a = 0: the plain interpolant α z + β ε).
    explicit StochasticInterpolant(Sched s = {}, double a = 1.0) : schedule_(std::move(s)), a_(a) {
        if (!(a >= 0.0) || !std::isfinite(a)) detail::fail("StochasticInterpolant", "a", "must be finite and >= 0, got ", a);
    }
    /// The schedule α_t, β_t.
    const Sched& schedule() const { return schedule_; }
    /// a, the scale of the latent noise.
    double latent_scale() const { return a_; }
    /// γ_t = a·t(1 − t).
    double gamma(double t) const { return a_ * t * (1.0 - t); }
    /// γ̇_t = a·(1 − 2t).
    double d_gamma(double t) const { return a_ * (1.0 - 2.0 * t); }

    /// ProbabilityPath: x_t and u_t per column, ξ drawn from rng (column by column, one coordinate after another).
    template <Dense Z, Dense E, Dense T, Dense O, Dense U, class G>
    void sample(const Z& z, const E& eps, const T& t, O&& xt, U&& ut, G& rng) const {
        using S = scalar_of<Z>;
        constexpr const char* where = "StochasticInterpolant::sample";
        detail::require_nonempty(where, "z", z);
        detail::require_same_shape(where, "z", z, "eps", eps);
        detail::require_same_shape(where, "z", z, "xt", xt);
        detail::require_same_shape(where, "z", z, "ut", ut);
        if (t.rows() != 1 || t.cols() != z.cols()) detail::fail(where, "t", "must be a 1 x ", z.cols(), " row of per-sample times, got ", t.rows(), " x ", t.cols());
        NormalSampler normal;
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            const double tj = static_cast<double>(t(j));
            detail::require_time(where, "t", tj);
            const S al = S(schedule_.alpha(tj)), be = S(schedule_.beta(tj)), da = S(schedule_.d_alpha(tj)), db = S(schedule_.d_beta(tj));
            const S g = S(gamma(tj)), dg = S(d_gamma(tj));
            for (Eigen::Index i = 0; i < z.rows(); ++i) {
                const S xi = S(normal(rng));
                xt(i, j) = al * z(i, j) + be * eps(i, j) + g * xi;
                ut(i, j) = da * z(i, j) + db * eps(i, j) + dg * xi;
            }
        }
    }

    /// The Gaussian schedule with the same marginal velocity: α_t and β̄_t = √(β_t² + γ_t²).
    struct Equivalent {
        /// The interpolant's schedule α_t, β_t.
        Sched s;
        /// The latent scale a.
        double a;
        /// α_t of the interpolant.
        double alpha(double t) const { return static_cast<double>(s.alpha(t)); }
        /// β̄_t = √(β_t² + γ_t²).
        double beta(double t) const {
            const double b = static_cast<double>(s.beta(t)), g = a * t * (1.0 - t);
            return std::sqrt(b * b + g * g);
        }
        /// α̇_t of the interpolant.
        double d_alpha(double t) const { return static_cast<double>(s.d_alpha(t)); }
        /// d/dt β̄_t = (ββ̇ + γγ̇)/β̄; −√(β̇² + γ̇²) where β̄ = 0.
        double d_beta(double t) const {
            const double bb = beta(t);
            if (bb != 0.0) return beta_d_beta(t) / bb;
            // β = γ = 0 (the data end): both vanish linearly, so β̄ falls at −√(β̇² + γ̇²).
            const double db = static_cast<double>(s.d_beta(t)), dg = a * (1.0 - 2.0 * t);
            return -std::sqrt(db * db + dg * dg);
        }
        /// ββ̇ + γγ̇, finite where β̄ → 0.
        double beta_d_beta(double t) const {
            const double b = static_cast<double>(s.beta(t)), g = a * t * (1.0 - t);
            return b * static_cast<double>(s.d_beta(t)) + g * a * (1.0 - 2.0 * t);
        }
    };
    /// The Gaussian schedule (α_t, β̄_t) whose path has the same marginal velocity: an exact oracle for tests.
    Equivalent equivalent_schedule() const { return {schedule_, a_}; }

private:
    Sched schedule_;
    double a_;
};

}  // namespace fmd

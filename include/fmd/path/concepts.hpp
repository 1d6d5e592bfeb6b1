#pragma once
// Path concepts (docs/concepts.md): what the trainer, the losses and the samplers ask of a
// probability path. GaussianPath<Schedule> models both; a user's interpolant needs only
// ProbabilityPath to be trained with the CFM loss and sampled with any ODE solver.
#include <concepts>

#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>

namespace fmd {

/// α, β, α̇, β̇ at one time (theory.md §1.2), and ββ̇, which stays finite where β → 0 and
/// β̇ → −∞ (VP, Sqrt at t = 1: theory.md §4.2, §5.3).
struct PathCoefficients {
    /// \var PathCoefficients::alpha
    /// α_t.
    /// \var PathCoefficients::beta
    /// β_t.
    /// \var PathCoefficients::d_alpha
    /// α̇_t.
    /// \var PathCoefficients::d_beta
    /// β̇_t.
    /// \var PathCoefficients::beta_d_beta
    /// β_t β̇_t (finite where β̇ is not).
    double alpha, beta, d_alpha, d_beta, beta_d_beta;
    /// D_t = α̇β − αβ̇ (theory.md §1.2).
    double D() const { return d_alpha * beta - alpha * d_beta; }
    /// βD = α̇β² − αββ̇ (theory.md §5.2), finite at t = 1 for VP and Sqrt.
    double beta_D() const { return d_alpha * beta * beta - alpha * beta_d_beta; }
};

/// A conditional probability path between noise ε (t = 0) and data z (t = 1):
///   `void sample(In<S> z, In<S> eps, const RowIn<S>& t, Out<S> xt, Out<S> ut, Rng& rng) const;`
/// draws x_t ~ p_t(·|ε, z) for each column (per-sample times t, 1 x n) and writes the conditional
/// velocity u_t(x_t|ε, z) = d/dt x_t, the CFM target (theory.md §6.2). `rng` is for paths with
/// randomness of their own (a latent noise term); a deterministic interpolant ignores it.
/// Marginal sampling then integrates the learned velocity with any ODE solver.
template <class P, class S>
concept ProbabilityPath = requires(const P& p, In<S> z, In<S> eps, const RowIn<S>& t, Out<S> xt, Out<S> ut, Rng& rng) {
    p.sample(z, eps, t, xt, ut, rng);
};

/// A Gaussian path x_t = α_t z + β_t ε: additionally
///   `PathCoefficients coefficients(double t) const;`
/// which unlocks the score / ε / x1 losses, the prediction conversions (theory.md §5.2), SDE
/// sampling and the exponential integrators.
template <class P, class S>
concept GaussianProbabilityPath = ProbabilityPath<P, S> && requires(const P& p, double t) {
    { p.coefficients(t) } -> std::convertible_to<PathCoefficients>;
};

/// Static check: names the missing member.
template <class P, class S>
constexpr bool check_path() {
    static_assert(requires(const P& p, In<S> z, In<S> eps, const RowIn<S>& t, Out<S> xt, Out<S> ut, Rng& rng) { p.sample(z, eps, t, xt, ut, rng); },
                  "fmd::ProbabilityPath: missing `void sample(In<S> z, In<S> eps, const RowIn<S>& t, Out<S> xt, Out<S> ut, Rng& rng) const`");
    return true;
}

}  // namespace fmd

#pragma once
// Polynomial schedule, theory.md §4.1: α = tⁿ, β = 1 − tⁿ, n > 0.
#include <cmath>

#include <fmd/core/error.hpp>
#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

/// Polynomial schedule α_t = tⁿ, β_t = 1 − tⁿ, n > 0 (theory.md §4.1).
class Polynomial {
public:
    /// The boundary values hold exactly (schedule::has_exact_boundaries).
    static constexpr bool exact_boundaries = true;
    /// Exponent n; throws fmd::invalid_argument naming 'n' unless finite and positive.
    explicit Polynomial(double n) : n_(n) {
        if (!(n > 0.0) || !std::isfinite(n)) detail::fail("schedule::Polynomial", "n", "must be a finite positive exponent, got ", n);
    }
    /// The exponent n.
    double exponent() const { return n_; }
    /// α_t = tⁿ.
    double alpha(double t) const { return std::pow(t, n_); }
    /// β_t = 1 − tⁿ.
    double beta(double t) const { return 1.0 - std::pow(t, n_); }
    // n < 1: α̇ → ∞ at t = 0; n > 1: α̇_0 = 0 and D_0 = 0 (theory.md §4.2).
    /// α̇_t = n tⁿ⁻¹ (infinite at t = 0 for n < 1).
    double d_alpha(double t) const { return n_ * std::pow(t, n_ - 1.0); }
    /// β̇_t = −n tⁿ⁻¹.
    double d_beta(double t) const { return -n_ * std::pow(t, n_ - 1.0); }

private:
    double n_;
};
static_assert(Schedule<Polynomial>);

}  // namespace fmd::schedule

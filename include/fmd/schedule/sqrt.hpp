#pragma once
// Square-root schedule of the course labs, theory.md §4.1: α = t, β = √(1 − t).
#include <cmath>

#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

/// Square-root schedule α_t = t, β_t = √(1 − t) (theory.md §4.1); β̇ is −∞ at t = 1, ββ̇ is not.
struct Sqrt {
    /// The boundary values hold exactly (schedule::has_exact_boundaries).
    static constexpr bool exact_boundaries = true;
    /// α_t = t.
    double alpha(double t) const { return t; }
    /// β_t = √(1 − t).
    double beta(double t) const { return std::sqrt(1.0 - t); }
    /// α̇_t = 1.
    double d_alpha(double) const { return 1.0; }
    // Unbounded at t = 1 (theory.md §4.2): −∞ there.
    /// β̇_t = −1/(2√(1 − t)); −∞ at t = 1.
    double d_beta(double t) const { return -0.5 / std::sqrt(1.0 - t); }
    /// ββ̇ = −½ for every t, also at t = 1 where β̇ is infinite.
    double beta_d_beta(double) const { return -0.5; }
};
static_assert(Schedule<Sqrt>);

}  // namespace fmd::schedule

#pragma once
// Cosine (trigonometric) schedule, theory.md §4.1: α = sin(πt/2), β = cos(πt/2).
#include <cmath>
#include <numbers>

#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

/// Cosine (trigonometric) schedule α_t = sin(πt/2), β_t = cos(πt/2) (theory.md §4.1).
struct Cosine {
    /// The boundary values hold exactly (schedule::has_exact_boundaries).
    static constexpr bool exact_boundaries = true;
    /// π/2.
    static constexpr double half_pi = std::numbers::pi / 2;
    /// α_t = sin(πt/2).
    double alpha(double t) const { return std::sin(half_pi * t); }
    // sin(π(1−t)/2) is exactly 0 at t = 1, where cos(π/2) is not (theory.md §4.2).
    /// β_t = cos(πt/2), computed as sin(π(1 − t)/2).
    double beta(double t) const { return std::sin(half_pi * (1.0 - t)); }
    /// α̇_t = (π/2)·cos(πt/2).
    double d_alpha(double t) const { return half_pi * std::sin(half_pi * (1.0 - t)); }
    /// β̇_t = −(π/2)·sin(πt/2).
    double d_beta(double t) const { return -half_pi * std::sin(half_pi * t); }
};
static_assert(Schedule<Cosine>);

}  // namespace fmd::schedule

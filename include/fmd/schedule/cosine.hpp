#pragma once
// Cosine (trigonometric) schedule, theory.md §4.1: α = sin(πt/2), β = cos(πt/2).
#include <cmath>
#include <numbers>

#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

struct Cosine {
    static constexpr bool exact_boundaries = true;
    static constexpr double half_pi = std::numbers::pi / 2;
    double alpha(double t) const { return std::sin(half_pi * t); }
    // sin(π(1−t)/2) is exactly 0 at t = 1, where cos(π/2) is not (theory.md §4.2).
    double beta(double t) const { return std::sin(half_pi * (1.0 - t)); }
    double d_alpha(double t) const { return half_pi * std::sin(half_pi * (1.0 - t)); }
    double d_beta(double t) const { return -half_pi * std::sin(half_pi * t); }
};
static_assert(Schedule<Cosine>);

}  // namespace fmd::schedule

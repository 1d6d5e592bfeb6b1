#pragma once
// Square-root schedule of the course labs, theory.md §4.1: α = t, β = √(1 − t).
#include <cmath>

#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

struct Sqrt {
    static constexpr bool exact_boundaries = true;
    double alpha(double t) const { return t; }
    double beta(double t) const { return std::sqrt(1.0 - t); }
    double d_alpha(double) const { return 1.0; }
    // Unbounded at t = 1 (theory.md §4.2): −∞ there.
    double d_beta(double t) const { return -0.5 / std::sqrt(1.0 - t); }
    /// ββ̇ = −½ for every t, also at t = 1 where β̇ is infinite.
    double beta_d_beta(double) const { return -0.5; }
};
static_assert(Schedule<Sqrt>);

}  // namespace fmd::schedule

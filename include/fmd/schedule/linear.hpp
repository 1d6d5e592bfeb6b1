#pragma once
// Linear (CondOT) schedule, theory.md §4.1: α = t, β = 1 − t.
#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

/// Linear (CondOT) schedule α_t = t, β_t = 1 − t (theory.md §4.1).
struct Linear {
    /// α_0 = 0, β_0 = 1, α_1 = 1, β_1 = 0 hold exactly (schedule::has_exact_boundaries).
    static constexpr bool exact_boundaries = true;
    /// α_t = t.
    double alpha(double t) const { return t; }
    /// β_t = 1 − t.
    double beta(double t) const { return 1.0 - t; }
    /// α̇_t = 1.
    double d_alpha(double) const { return 1.0; }
    /// β̇_t = −1.
    double d_beta(double) const { return -1.0; }
};
static_assert(Schedule<Linear>);

}  // namespace fmd::schedule

#pragma once
// Linear (CondOT) schedule, theory.md §4.1: α = t, β = 1 − t.
#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

struct Linear {
    static constexpr bool exact_boundaries = true;
    double alpha(double t) const { return t; }
    double beta(double t) const { return 1.0 - t; }
    double d_alpha(double) const { return 1.0; }
    double d_beta(double) const { return -1.0; }
};
static_assert(Schedule<Linear>);

}  // namespace fmd::schedule

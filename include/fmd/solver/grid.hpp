#pragma once
// Time grids (theory.md §7.1): increasing sequences in [0, 1]; time arithmetic stays in double.
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>

namespace fmd::grid {

/// Checks a grid: at least two points, strictly increasing, finite, inside [0, 1].
inline void validate(const std::vector<double>& g, const char* where = "grid::validate") {
    if (g.size() < 2) detail::fail(where, "grid", "needs at least 2 time points, got ", g.size());
    for (std::size_t k = 0; k < g.size(); ++k) {
        if (!std::isfinite(g[k]) || g[k] < 0.0 || g[k] > 1.0) detail::fail(where, "grid", "point ", k, " = ", g[k], " is outside [0, 1]");
        if (k > 0 && !(g[k] > g[k - 1])) detail::fail(where, "grid", "must be strictly increasing, but point ", k, " = ", g[k], " follows ", g[k - 1]);
    }
}

/// t_k = t0 + k (t1 − t0)/n, k = 0..n: n steps (theory.md §7.1).
inline std::vector<double> uniform(long n, double t0 = 0.0, double t1 = 1.0) {
    detail::require_positive_count("grid::uniform", "n", n);
    detail::require_time("grid::uniform", "t0", t0);
    detail::require_time("grid::uniform", "t1", t1);
    if (!(t0 < t1)) detail::fail("grid::uniform", "t1", "must exceed t0 = ", t0, ", got ", t1);
    std::vector<double> g(static_cast<std::size_t>(n) + 1);
    for (long k = 0; k <= n; ++k) g[static_cast<std::size_t>(k)] = t0 + (t1 - t0) * static_cast<double>(k) / static_cast<double>(n);
    g.back() = t1;
    return g;
}

/// A user-given grid, validated.
inline std::vector<double> from(std::vector<double> g) {
    validate(g, "grid::from");
    return g;
}

}  // namespace fmd::grid

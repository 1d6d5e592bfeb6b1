#pragma once
// Time grids (theory.md §7.1): increasing sequences in [0, 1]; time arithmetic stays in double.
// uniform and cosine depend on t only; log_snr and edm are defined through a schedule's
// λ_t = log(α_t/β_t) (the half log-SNR of DPM-Solver; theory.md §1.2's λ is twice this, which
// spaces the same grid) and invert it by bisection, so user schedules work as well.
#include <cmath>
#include <cstddef>
#include <limits>
#include <numbers>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/schedule/concepts.hpp>

namespace fmd::grid {

/// Checks a grid: at least two points, strictly increasing, finite, inside [0, 1].
inline void validate(const std::vector<double>& g, const char* where = "grid::validate") {
    if (g.size() < 2) detail::fail(where, "grid", "needs at least 2 time points, got ", g.size());
    for (std::size_t k = 0; k < g.size(); ++k) {
        if (!std::isfinite(g[k]) || g[k] < 0.0 || g[k] > 1.0) detail::fail(where, "grid", "point ", k, " = ", g[k], " is outside [0, 1]");
        if (k > 0 && !(g[k] > g[k - 1])) detail::fail(where, "grid", "must be strictly increasing, but point ", k, " = ", g[k], " follows ", g[k - 1]);
    }
}

/// Most steps a generated grid may have (10^8 steps: an 800 MB grid; far past any sampler's use).
inline constexpr long max_steps = 100'000'000;

namespace detail {
using fmd::detail::fail;

inline void check_steps(const char* where, long n) {
    fmd::detail::require_positive_count(where, "n", n);
    if (n > max_steps) fail(where, "n", "must be at most grid::max_steps = ", max_steps, ", got ", n);
}

inline void check_interval(const char* where, long n, double t0, double t1) {
    check_steps(where, n);
    fmd::detail::require_time(where, "t0", t0);
    fmd::detail::require_time(where, "t1", t1);
    if (!(t0 < t1)) fail(where, "t1", "must exceed t0 = ", t0, ", got ", t1);
}

/// The schedule of a GaussianPath, or the argument itself when it is a schedule.
template <class P>
const auto& schedule_of(const P& p) {
    if constexpr (requires { p.schedule(); }) {
        static_assert(schedule::Schedule<std::remove_cvref_t<decltype(p.schedule())>>);
        return p.schedule();
    } else {
        static_assert(schedule::Schedule<P>, "fmd::grid: pass a GaussianPath or a schedule");
        return p;
    }
}

/// λ_t = log α_t − log β_t: −∞ where α = 0, +∞ where β = 0 (both 0 gives NaN: caller checks).
template <class Sched>
double lambda(const Sched& s, double t) {
    const double a = static_cast<double>(s.alpha(t)), b = static_cast<double>(s.beta(t));
    if (a == 0.0 && b == 0.0) return std::numeric_limits<double>::quiet_NaN();
    if (a == 0.0) return -std::numeric_limits<double>::infinity();
    if (b == 0.0) return std::numeric_limits<double>::infinity();
    return std::log(a) - std::log(b);
}

/// t ∈ [lo, hi] with λ_t = target, given λ_lo ≤ target ≤ λ_hi: bisection in double down to
/// adjacent floating-point numbers, returning the end whose λ is closer.
template <class Sched>
double invert_lambda(const Sched& s, double target, double lo, double hi) {
    double l_lo = lambda(s, lo), l_hi = lambda(s, hi);
    for (int it = 0; it < 2000; ++it) {
        const double mid = lo + 0.5 * (hi - lo);
        if (!(mid > lo && mid < hi)) break;
        const double l = lambda(s, mid);
        if (l < target) lo = mid, l_lo = l;
        else hi = mid, l_hi = l;
    }
    return (target - l_lo <= l_hi - target) ? lo : hi;
}

/// Grid points t_k (k = 1..n−1 given by targets) solving λ_t = target_k; endpoints fixed.
template <class Sched>
std::vector<double> invert_targets(const char* where, const Sched& s, const std::vector<double>& targets, double t_first, double t_last) {
    std::vector<double> g(targets.size());
    g.front() = t_first;
    g.back() = t_last;
    for (std::size_t k = 1; k + 1 < g.size(); ++k) {
        g[k] = invert_lambda(s, targets[k], g[k - 1], t_last);
        const double l = lambda(s, g[k]);
        // A continuous increasing λ is matched to near rounding; anything else is a bad schedule.
        if (!(std::abs(l - targets[k]) <= 1e-6 * (1.0 + std::abs(targets[k]))))
            fail(where, "path", "has no t with λ_t = log(α_t/β_t) = ", targets[k], " (closest: λ = ", l, " at t = ", g[k],
                 "); λ_t must be continuous and increasing");
        if (!(g[k] > g[k - 1]))
            fail(where, "n", "is too large: grid points ", k - 1, " and ", k, " coincide in double at t = ", g[k]);
    }
    if (g.size() >= 2 && !(g.back() > g[g.size() - 2]))
        fail(where, "n", "is too large: the last two grid points coincide in double at t = ", g.back());
    return g;
}
}  // namespace detail

/// t_k = t0 + k (t1 − t0)/n, k = 0..n: n steps (theory.md §7.1).
inline std::vector<double> uniform(long n, double t0 = 0.0, double t1 = 1.0) {
    detail::check_interval("grid::uniform", n, t0, t1);
    std::vector<double> g(static_cast<std::size_t>(n) + 1);
    for (long k = 0; k <= n; ++k) g[static_cast<std::size_t>(k)] = t0 + (t1 - t0) * static_cast<double>(k) / static_cast<double>(n);
    g.back() = t1;
    return g;
}

/// Cosine (Chebyshev–Lobatto) spacing, n steps:
/// \verbatim
///   t_k = t0 + (t1 − t0) · (1 − cos(π k/n))/2,   k = 0..n.
/// \endverbatim
/// Points cluster at both ends (first and last steps ≈ (t1 − t0) π²/(4n²)), the middle step is
/// ≈ (t1 − t0) π/(2n): small steps where the fields of §4.2 change fastest (near noise and data).
inline std::vector<double> cosine(long n, double t0 = 0.0, double t1 = 1.0) {
    detail::check_interval("grid::cosine", n, t0, t1);
    std::vector<double> g(static_cast<std::size_t>(n) + 1);
    for (long k = 0; k <= n; ++k)
        g[static_cast<std::size_t>(k)] = t0 + (t1 - t0) * 0.5 * (1.0 - std::cos(std::numbers::pi * static_cast<double>(k) / static_cast<double>(n)));
    g.front() = t0;
    g.back() = t1;
    validate(g, "grid::cosine");  // only fails if n is so large that neighbours coincide
    return g;
}

/// Log-SNR-uniform grid for a GaussianPath or schedule, n steps: λ_{t_k} = λ(t0) + k (λ(t1) − λ(t0))/n
/// with λ_t = log(α_t/β_t), each t_k found by bisection in double. λ must be finite at both
/// ends — no clamping: t0 must have α > 0 (t0 > 0 for schedules with α_0 = 0) and t1 must have
/// β > 0 (t1 < 1 for β_1 = 0), otherwise fmd::error names t0 / t1. VP has α_0 > 0, so t0 = 0
/// is fine there. λ must increase on [t0, t1] (every schedule of theory.md §4 does).
template <class PathOrSchedule>
std::vector<double> log_snr(const PathOrSchedule& path, long n, double t0, double t1) {
    constexpr const char* where = "grid::log_snr";
    detail::check_interval(where, n, t0, t1);
    const auto& s = detail::schedule_of(path);
    const double l0 = detail::lambda(s, t0), l1 = detail::lambda(s, t1);
    if (!std::isfinite(l0))
        detail::fail(where, "t0", "gives λ = log(α/β) = ", l0, " at t0 = ", t0, " (α = ", static_cast<double>(s.alpha(t0)),
                     "): the log-SNR grid needs a finite λ; start at t0 > 0, e.g. 1e-3");
    if (!std::isfinite(l1))
        detail::fail(where, "t1", "gives λ = log(α/β) = ", l1, " at t1 = ", t1, " (β = ", static_cast<double>(s.beta(t1)),
                     "): the log-SNR grid needs a finite λ; end at t1 < 1, e.g. 1 − 1e-3");
    if (!(l0 < l1)) detail::fail(where, "path", "has λ(t0) = ", l0, " >= λ(t1) = ", l1, ": λ_t = log(α_t/β_t) must increase");
    std::vector<double> targets(static_cast<std::size_t>(n) + 1);
    for (long k = 0; k <= n; ++k) targets[static_cast<std::size_t>(k)] = l0 + (l1 - l0) * static_cast<double>(k) / static_cast<double>(n);
    return detail::invert_targets(where, s, targets, t0, t1);
}

/// Options of the EDM ρ-grid (Karras et al. 2022 defaults).
struct EdmOptions {
    double sigma_min = 0.002;  ///< smallest noise level σ = β/α (> 0)
    double sigma_max = 80.0;  ///< largest noise level (> sigma_min)
    double rho = 7.0;  ///< ρ: larger values concentrate the grid at small σ
};

/// EDM ρ-grid [Karras et al. 2022, eq. 5] in this library's time, n steps (n + 1 points):
/// \verbatim
///   σ_i = (σ_max^{1/ρ} + i/(n−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,   i = 0..n−1   (n = 1: σ_0 = σ_max),
///   t_i solves β_t/α_t = σ_i (EDM's σ is β/α, theory.md §1.4), by bisection on λ = −log σ;
///   t_n = 1: Karras's appended σ_n = 0, the data end of the path.
/// \endverbatim
/// Endpoint handling: the grid starts at t(σ_max) > 0, not at 0 (linear: t_0 = 1/81). Karras
/// start there from x = σ_max·N(0, I) in EDM units, i.e. x_t = α_t σ_max ε = β_t ε here; a sampler
/// fed N(0, I) at t_0 makes the same approximation up to the factor β_{t_0} (0.988 for linear).
/// To integrate from t = 0 prepend it with grid::from. σ_max must be below β_0/α_0 (∞ when
/// α_0 = 0; VP: ≈ 152) and σ_min above β_1/α_1 (0 when β_1 = 0), else fmd::error names them.
template <class PathOrSchedule>
std::vector<double> edm(const PathOrSchedule& path, long n, EdmOptions opt = {}) {
    constexpr const char* where = "grid::edm";
    detail::check_steps(where, n);
    if (!(opt.sigma_min > 0.0) || !std::isfinite(opt.sigma_min)) detail::fail(where, "sigma_min", "must be finite and > 0, got ", opt.sigma_min);
    if (!(opt.sigma_max > opt.sigma_min) || !std::isfinite(opt.sigma_max))
        detail::fail(where, "sigma_max", "must be finite and > sigma_min = ", opt.sigma_min, ", got ", opt.sigma_max);
    if (!(opt.rho > 0.0) || !std::isfinite(opt.rho)) detail::fail(where, "rho", "must be finite and > 0, got ", opt.rho);
    const auto& s = detail::schedule_of(path);
    const double l_start = detail::lambda(s, 0.0), l_end = detail::lambda(s, 1.0);
    if (std::isnan(l_start) || std::isnan(l_end)) detail::fail(where, "path", "has α = β = 0 at an end of [0, 1]");
    if (!(l_start < -std::log(opt.sigma_max)))
        detail::fail(where, "sigma_max", "= ", opt.sigma_max, " is not below the schedule's largest β/α = ", std::exp(-l_start),
                     " (at t = 0): no t has β_t/α_t = sigma_max");
    if (!(l_end > -std::log(opt.sigma_min)))
        detail::fail(where, "sigma_min", "= ", opt.sigma_min, " is not above the schedule's smallest β/α = ", std::exp(-l_end),
                     " (at t = 1): no t < 1 has β_t/α_t = sigma_min");
    const double a = std::pow(opt.sigma_max, 1.0 / opt.rho), b = std::pow(opt.sigma_min, 1.0 / opt.rho);
    std::vector<double> targets(static_cast<std::size_t>(n) + 1);  // λ_i = −log σ_i; the last is unused (t_n = 1)
    for (long i = 0; i < n; ++i) {
        const double ramp = n == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(n - 1);
        targets[static_cast<std::size_t>(i)] = -opt.rho * std::log(a + ramp * (b - a));
    }
    targets.back() = std::numeric_limits<double>::infinity();
    const double t_first = detail::invert_lambda(s, targets.front(), 0.0, 1.0);
    if (!(std::abs(detail::lambda(s, t_first) - targets.front()) <= 1e-6 * (1.0 + std::abs(targets.front()))))
        detail::fail(where, "path", "has no t with β_t/α_t = sigma_max = ", opt.sigma_max, "; λ_t = log(α_t/β_t) must be continuous and increasing");
    if (n == 1) return {t_first, 1.0};
    auto g = detail::invert_targets(where, s, targets, t_first, 1.0);
    validate(g, where);
    return g;
}

/// A user-given grid, validated.
inline std::vector<double> from(std::vector<double> g) {
    validate(g, "grid::from");
    return g;
}

}  // namespace fmd::grid

#pragma once
// Training-time samplers (theory.md §6.8). Each fills a 1 x n row (the TimeSampler concept).
#include <algorithm>
#include <cmath>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>

namespace fmd::time_sampler {

/// t ~ U[lo, hi]; use hi = 1 − δ for losses that divide by β (theory.md §4.3).
struct Uniform {
    /// \var Uniform::lo
    /// Lower end of the interval.
    /// \var Uniform::hi
    /// Upper end of the interval.
    double lo = 0.0, hi = 1.0;
    /// U[0, 1].
    Uniform() = default;
    /// U[lo, hi]; throws fmd::invalid_argument naming 'lo, hi' unless 0 ≤ lo < hi ≤ 1.
    Uniform(double lo_, double hi_) : lo(lo_), hi(hi_) {
        if (!(lo >= 0.0 && hi <= 1.0 && lo < hi)) detail::fail("time_sampler::Uniform", "lo, hi", "must satisfy 0 <= lo < hi <= 1, got [", lo, ", ", hi, "]");
    }
    /// Fills every entry of `out` (a 1 × n row of times) with an independent draw.
    template <Dense O, class G>
    void operator()(O&& out, G& rng) const {
        for (Eigen::Index j = 0; j < out.size(); ++j) out(j) = static_cast<scalar_of<O>>(lo + (hi - lo) * uniform01(rng));
    }
};

/// t = sigmoid(m + s·n), n ~ N(0, 1) (SD3's logit-normal in this library's time direction:
/// m_ours = −m_SD3, theory.md §6.8). Optionally clipped to [lo, hi].
struct LogitNormal {
    /// \var LogitNormal::m
    /// Location of the logit.
    /// \var LogitNormal::s
    /// Scale of the logit (> 0).
    /// \var LogitNormal::lo
    /// Draws are clipped to [lo, hi].
    /// \var LogitNormal::hi
    /// Draws are clipped to [lo, hi].
    double m = 0.0, s = 1.0, lo = 0.0, hi = 1.0;
    /// m = 0, s = 1, no clipping.
    LogitNormal() = default;
    /// Throws fmd::invalid_argument naming 's' (not finite and > 0), 'm' (not finite) or 'lo, hi'
    /// (not 0 ≤ lo < hi ≤ 1).
    LogitNormal(double m_, double s_, double lo_ = 0.0, double hi_ = 1.0) : m(m_), s(s_), lo(lo_), hi(hi_) {
        if (!(s > 0.0) || !std::isfinite(s)) detail::fail("time_sampler::LogitNormal", "s", "must be finite and > 0, got ", s);
        if (!std::isfinite(m)) detail::fail("time_sampler::LogitNormal", "m", "must be finite, got ", m);
        if (!(lo >= 0.0 && hi <= 1.0 && lo < hi)) detail::fail("time_sampler::LogitNormal", "lo, hi", "must satisfy 0 <= lo < hi <= 1");
    }
    /// Density π(t) of the unclipped distribution.
    double density(double t) const {
        const double l = std::log(t / (1.0 - t));
        return std::exp(-(l - m) * (l - m) / (2 * s * s)) / (s * std::sqrt(2 * 3.14159265358979323846) * t * (1.0 - t));
    }
    /// Fills every entry of `out` (a 1 × n row of times) with an independent draw.
    template <Dense O, class G>
    void operator()(O&& out, G& rng) const {
        NormalSampler normal;
        for (Eigen::Index j = 0; j < out.size(); ++j) {
            const double v = 1.0 / (1.0 + std::exp(-(m + s * normal(rng))));
            out(j) = static_cast<scalar_of<O>>(std::clamp(v, lo, hi));
        }
    }
};

/// t uniform on the k grid times {0, 1/k, …, (k − 1)/k}: the left ends of k Euler steps, for
/// distilling a flow into a k-step sampler (theory.md §9.6).
struct Discrete {
    long k = 1;  ///< number of grid times
    /// k = steps; throws fmd::invalid_argument naming 'k' when steps < 1.
    explicit Discrete(long steps = 1) : k(steps) {
        if (k < 1) detail::fail("time_sampler::Discrete", "k", "must be >= 1, got ", k);
    }
    /// Fills every entry of `out` (a 1 × n row of times) with an independent draw.
    template <Dense O, class G>
    void operator()(O&& out, G& rng) const {
        for (Eigen::Index j = 0; j < out.size(); ++j) {
            const long i = std::min(static_cast<long>(uniform01(rng) * static_cast<double>(k)), k - 1);
            out(j) = static_cast<scalar_of<O>>(static_cast<double>(i) / static_cast<double>(k));
        }
    }
};

/// A training-time sampler: `void operator()(Row<S>& t, Rng& rng) const` fills a 1 x n row of
/// times in [0, 1].
template <class T, class S>
concept TimeSampler = requires(const T& ts, Row<S>& out, Rng& rng) { ts(out, rng); };

}  // namespace fmd::time_sampler

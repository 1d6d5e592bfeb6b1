#pragma once
// 2-D toy distributions of the course and its notebooks. Each fills a 2 x n matrix.
#include <cmath>
#include <numbers>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>

namespace fmd::data {

/// The checkerboard of the seed notebook: a `cells` x `cells` board on [−half, half]², uniform on
/// the squares whose column i and row j satisfy (i + j) odd.
struct Checkerboard {
    int cells = 4;      ///< squares per side
    double half = 4.0;  ///< the board covers [−half, half]²

    /// True when (x, y) lies on a filled square (the quality figure of the checkerboard example).
    bool filled(double x, double y) const {
        if (!(std::abs(x) < half && std::abs(y) < half)) return false;
        const int i = static_cast<int>((x + half) / (2 * half) * cells);
        const int j = static_cast<int>((y + half) / (2 * half) * cells);
        return (i + j) % 2 == 1;
    }
    /// Fraction of the columns of a 2 x n batch that land on filled squares.
    template <Dense M>
    double filled_fraction(const M& pts) const {
        if (pts.rows() != 2) detail::fail("data::Checkerboard::filled_fraction", "pts", "must be 2 x n, got ", pts.rows(), " rows");
        if (pts.cols() == 0) return 0.0;
        long hits = 0;
        for (Eigen::Index j = 0; j < pts.cols(); ++j) hits += filled(static_cast<double>(pts(0, j)), static_cast<double>(pts(1, j)));
        return static_cast<double>(hits) / static_cast<double>(pts.cols());
    }
    /// Rejection sampling, as the notebook does: uniform on the square, keep filled cells.
    template <Dense O, class G>
    void sample(O&& out, G& rng) const {
        if (out.rows() != 2) detail::fail("data::Checkerboard::sample", "out", "must be 2 x n, got ", out.rows(), " rows");
        for (Eigen::Index j = 0; j < out.cols();) {
            const double x = -half + 2 * half * uniform01(rng), y = -half + 2 * half * uniform01(rng);
            if (!filled(x, y)) continue;
            out(0, j) = static_cast<scalar_of<O>>(x);
            out(1, j) = static_cast<scalar_of<O>>(y);
            ++j;
        }
    }
};

/// Two interleaving half circles with Gaussian jitter `noise` (scikit-learn's make_moons layout,
/// scaled by `scale`).
struct TwoMoons {
    /// \var TwoMoons::noise
    /// Standard deviation of the Gaussian jitter, before scaling.
    /// \var TwoMoons::scale
    /// Factor applied to both coordinates.
    double noise = 0.05, scale = 2.0;
    /// Fills the 2 × n `out` with draws; throws fmd::invalid_argument naming 'out' unless it has 2 rows.
    template <Dense O, class G>
    void sample(O&& out, G& rng) const {
        if (out.rows() != 2) detail::fail("data::TwoMoons::sample", "out", "must be 2 x n, got ", out.rows(), " rows");
        NormalSampler normal;
        for (Eigen::Index j = 0; j < out.cols(); ++j) {
            const double a = std::numbers::pi * uniform01(rng);
            const bool upper = uniform01(rng) < 0.5;
            double x = upper ? std::cos(a) : 1.0 - std::cos(a);
            double y = upper ? std::sin(a) : 0.5 - std::sin(a);
            x = scale * (x - 0.5 + noise * normal(rng));
            y = scale * (y - 0.25 + noise * normal(rng));
            out(0, j) = static_cast<scalar_of<O>>(x);
            out(1, j) = static_cast<scalar_of<O>>(y);
        }
    }
};

}  // namespace fmd::data

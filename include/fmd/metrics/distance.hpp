#pragma once
// Distances between two sample sets (columns), for tests, examples and quality reports.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>

namespace fmd::metrics {

/// Sliced 2-Wasserstein distance: sqrt of the mean over `projections` random unit directions of
/// W2² between the projected 1-D empirical measures (equal sample counts: sorted pairing).
template <Dense A, Dense B, class G>
double sliced_wasserstein(const A& a, const B& b, int projections, G& rng) {
    if (a.rows() != b.rows()) detail::fail("metrics::sliced_wasserstein", "b", "must have ", a.rows(), " rows like 'a', got ", b.rows());
    if (a.cols() != b.cols() || a.cols() == 0) detail::fail("metrics::sliced_wasserstein", "b", "must hold as many samples as 'a' (", a.cols(), "), got ", b.cols());
    detail::require_positive_count("metrics::sliced_wasserstein", "projections", projections);
    const Eigen::Index d = a.rows(), n = a.cols();
    Vector<double> dir(d);
    std::vector<double> pa(static_cast<std::size_t>(n)), pb(static_cast<std::size_t>(n));
    double total = 0.0;
    for (int p = 0; p < projections; ++p) {
        fill_normal(dir, rng);
        dir.normalize();
        for (Eigen::Index j = 0; j < n; ++j) {
            pa[static_cast<std::size_t>(j)] = a.col(j).template cast<double>().dot(dir);
            pb[static_cast<std::size_t>(j)] = b.col(j).template cast<double>().dot(dir);
        }
        std::sort(pa.begin(), pa.end());
        std::sort(pb.begin(), pb.end());
        double sq = 0.0;
        for (std::size_t j = 0; j < pa.size(); ++j) sq += (pa[j] - pb[j]) * (pa[j] - pb[j]);
        total += sq / static_cast<double>(n);
    }
    return std::sqrt(total / projections);
}

/// Squared maximum mean discrepancy with a Gaussian kernel exp(−‖x − y‖²/(2h²)), unbiased estimate.
template <Dense A, Dense B>
double mmd2(const A& a, const B& b, double bandwidth) {
    if (a.rows() != b.rows()) detail::fail("metrics::mmd2", "b", "must have ", a.rows(), " rows like 'a', got ", b.rows());
    if (a.cols() < 2 || b.cols() < 2) detail::fail("metrics::mmd2", "a, b", "need at least 2 samples each");
    if (!(bandwidth > 0.0)) detail::fail("metrics::mmd2", "bandwidth", "must be > 0, got ", bandwidth);
    const double g = -0.5 / (bandwidth * bandwidth);
    auto mean_kernel = [g](const auto& x, const auto& y, bool same) {
        double s = 0.0;
        for (Eigen::Index i = 0; i < x.cols(); ++i)
            for (Eigen::Index j = same ? i + 1 : 0; j < y.cols(); ++j)
                s += std::exp(g * (x.col(i).template cast<double>() - y.col(j).template cast<double>()).squaredNorm());
        const double pairs = same ? 0.5 * static_cast<double>(x.cols()) * static_cast<double>(x.cols() - 1) : static_cast<double>(x.cols()) * static_cast<double>(y.cols());
        return s / pairs;
    };
    return mean_kernel(a, a, true) + mean_kernel(b, b, true) - 2.0 * mean_kernel(a, b, false);
}

}  // namespace fmd::metrics

#pragma once
// A finite data set sampled with replacement, as the seed training loop does
// (x1 = data[randint(M, (batch,))]).
#include <algorithm>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>

namespace fmd::data {

template <class S>
class Dataset {
public:
    /// points: d x M, one sample per column.
    explicit Dataset(Matrix<S> points) : points_(std::move(points)) { detail::require_nonempty("data::Dataset", "points", points_); }
    const Matrix<S>& points() const { return points_; }
    Eigen::Index dim() const { return points_.rows(); }
    Eigen::Index size() const { return points_.cols(); }

    /// Fills each column of out with a uniformly chosen point (with replacement). No allocation.
    template <Dense O, class G>
    void sample(O&& out, G& rng) const {
        if (out.rows() != dim()) detail::fail("data::Dataset::sample", "out", "must have ", dim(), " rows, got ", out.rows());
        const double m = static_cast<double>(size());
        for (Eigen::Index j = 0; j < out.cols(); ++j) {
            const auto k = std::min(static_cast<Eigen::Index>(uniform01(rng) * m), size() - 1);
            out.col(j) = points_.col(k);
        }
    }

private:
    Matrix<S> points_;
};

}  // namespace fmd::data

#pragma once
// A finite data set sampled with replacement, as the seed training loop does
// (x1 = data[randint(M, (batch,))]).
#include <algorithm>
#include <span>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>

namespace fmd::data {

/// A finite data set z_1 … z_M sampled with replacement (a train::DataSource).
template <class S>
class Dataset {
public:
    /// points: d x M, one sample per column, finite (a NaN in the data would poison every step that draws it);
    /// throws fmd::invalid_argument naming 'points' when empty or not finite.
    explicit Dataset(Matrix<S> points) : points_(std::move(points)) {
        detail::require_nonempty("data::Dataset", "points", points_);
        detail::require_finite("data::Dataset", "points", points_);
    }
    /// The points, d × M.
    const Matrix<S>& points() const { return points_; }
    /// d, the dimension of a point.
    Eigen::Index dim() const { return points_.rows(); }
    /// M, the number of points.
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

/// A finite labelled data set (z_m, y_m), sampled with replacement: a train::LabelledDataSource
/// for class-conditional training (theory.md §6.9).
template <class S>
class LabelledDataset {
public:
    /// points: d x M; labels: M entries (class indices >= 0).
    LabelledDataset(Matrix<S> points, std::vector<int> labels) : data_(std::move(points)), labels_(std::move(labels)) {
        if (static_cast<Eigen::Index>(labels_.size()) != data_.size())
            detail::fail("data::LabelledDataset", "labels", "must hold one label per point (", data_.size(), "), got ", labels_.size());
        for (int y : labels_)
            if (y < 0) detail::fail("data::LabelledDataset", "labels", "must be >= 0, got ", y);
    }
    /// The points, d × M.
    const Matrix<S>& points() const { return data_.points(); }
    /// The labels, one per point.
    const std::vector<int>& labels() const { return labels_; }
    /// d, the dimension of a point.
    Eigen::Index dim() const { return data_.dim(); }
    /// M, the number of points.
    Eigen::Index size() const { return data_.size(); }

    /// Fills column j of out with a uniformly chosen point and labels[j] with its label. No allocation.
    template <Dense O, class G>
    void sample(O&& out, std::span<int> labels, G& rng) const {
        if (out.rows() != dim()) detail::fail("data::LabelledDataset::sample", "out", "must have ", dim(), " rows, got ", out.rows());
        if (static_cast<Eigen::Index>(labels.size()) != out.cols())
            detail::fail("data::LabelledDataset::sample", "labels", "must hold one entry per column of out (", out.cols(), "), got ", labels.size());
        const double m = static_cast<double>(size());
        for (Eigen::Index j = 0; j < out.cols(); ++j) {
            const auto k = std::min(static_cast<Eigen::Index>(uniform01(rng) * m), size() - 1);
            out.col(j) = data_.points().col(k);
            labels[static_cast<std::size_t>(j)] = labels_[static_cast<std::size_t>(k)];
        }
    }

private:
    Dataset<S> data_;
    std::vector<int> labels_;
};

}  // namespace fmd::data

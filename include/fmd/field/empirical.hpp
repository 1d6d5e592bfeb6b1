#pragma once
// Exact marginal fields of a finite data set (theory.md §8.3): the minimizer of the CFM loss on
// that set, which memorizes it. Singular at t = 1 (β = 0).
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/path/gaussian_path.hpp>

namespace fmd {

/// Exact marginal fields of a Gaussian path whose data distribution is the empirical one of M
/// training points (theory.md §8): x̂1 is a softmax-weighted mean of the points. The memorizing
/// optimum of flow matching on a finite set; a test oracle.
template <class Path, class S>
class EmpiricalOracle {
public:
    /// data: d x M, one training point per column.
    EmpiricalOracle(const Path& path, Matrix<S> data) : path_(path), data_(std::move(data)), w_(data_.cols()), xhat_(data_.rows()) {
        detail::require_nonempty("EmpiricalOracle", "data", data_);
    }
    /// The training points, d × M.
    const Matrix<S>& data() const { return data_; }

    /// x̂1 = Σ_m w_m z_m, w = softmax(−‖x − α z_m‖²/(2β²)).
    void x1(In<S> x, double t, Out<S> out) {
        const auto c = check(x, t, out, "EmpiricalOracle::x1");
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            weights(x.col(j), c);
            out.col(j).noalias() = data_ * w_;
        }
    }
    /// u = (β̇/β) x + (D/β) x̂1.
    void velocity(In<S> x, double t, Out<S> out) {
        const auto c = check(x, t, out, "EmpiricalOracle::velocity");
        const S a = S(c.d_beta / c.beta), b = S(c.D() / c.beta);
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            weights(x.col(j), c);
            xhat_.noalias() = data_ * w_;
            out.col(j) = a * x.col(j) + b * xhat_;
        }
    }
    /// s = (α x̂1 − x)/β².
    void score(In<S> x, double t, Out<S> out) {
        const auto c = check(x, t, out, "EmpiricalOracle::score");
        const S ib2 = S(1.0 / (c.beta * c.beta));
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            weights(x.col(j), c);
            xhat_.noalias() = data_ * w_;
            out.col(j) = ib2 * (S(c.alpha) * xhat_ - x.col(j));
        }
    }
    /// A VectorField lambda calling velocity() (holds this oracle by reference).
    auto velocity_field() {
        return [this](In<S> x, double t, Out<S> out) { velocity(x, t, out); };
    }

private:
    template <class O>
    PathCoefficients check(const In<S>& x, double t, const O& out, const char* where) const {
        detail::require_time(where, "t", t);
        if (x.rows() != data_.rows()) detail::fail(where, "x", "must have ", data_.rows(), " rows (the data's dim), got ", x.rows());
        detail::require_same_shape(where, "x", x, "out", out);
        const auto c = path_.coefficients(t);
        if (!(c.beta > 0.0)) detail::fail(where, "t", "gives β_t = 0: the empirical field is singular there (stop at 1 − δ, theory.md §8.3)");
        return c;
    }
    template <class Col>
    void weights(const Col& x, const PathCoefficients& c) {
        const S alpha = S(c.alpha), scale = S(-0.5 / (c.beta * c.beta));
        S best = -std::numeric_limits<S>::infinity();
        for (Eigen::Index m = 0; m < data_.cols(); ++m) {
            w_(m) = scale * (x - alpha * data_.col(m)).squaredNorm();
            best = std::max(best, w_(m));
        }
        w_ = (w_.array() - best).exp();
        w_ /= w_.sum();
    }

    Path path_;
    Matrix<S> data_;
    Vector<S> w_, xhat_;
};

}  // namespace fmd

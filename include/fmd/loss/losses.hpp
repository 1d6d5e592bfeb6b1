#pragma once
// Regression losses of theory.md §6. Every target is linear in (z, ε): target = c_z z + c_ε ε,
// so one routine computes value and gradient for all of them without building the target.
#include <cmath>
#include <concepts>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/path/gaussian_path.hpp>
#include <fmd/path/prediction.hpp>

namespace fmd::loss {

/// Coefficients of target = z_coef·z + eps_coef·ε.
struct TargetCoefficients {
    double z_coef, eps_coef;
};

/// CFM: velocity regression, target α̇ z + β̇ ε (theory.md §6.2). Linear schedule: x1 − x0.
struct Cfm {
    static constexpr Prediction prediction = Prediction::velocity;
    static TargetCoefficients target(const PathCoefficients& c) { return {c.d_alpha, c.d_beta}; }
};
/// CSM: score regression, target −ε/β_t (theory.md §6.3); singular at β_t = 0.
struct Csm {
    static constexpr Prediction prediction = Prediction::score;
    static TargetCoefficients target(const PathCoefficients& c) { return {0.0, -1.0 / c.beta}; }
};
/// ε-prediction, target ε (theory.md §6.4).
struct EpsilonPrediction {
    static constexpr Prediction prediction = Prediction::epsilon;
    static TargetCoefficients target(const PathCoefficients&) { return {0.0, 1.0}; }
};
/// x1-prediction (denoiser), target z (theory.md §6.5).
struct X1Prediction {
    static constexpr Prediction prediction = Prediction::x1;
    static TargetCoefficients target(const PathCoefficients&) { return {1.0, 0.0}; }
};

inline constexpr Cfm cfm{};
inline constexpr Csm csm{};
inline constexpr EpsilonPrediction epsilon{};
inline constexpr X1Prediction x1{};

/// A loss: its target as c_z z + c_ε ε given the path coefficients at t.
template <class L>
concept Loss = requires(const PathCoefficients& c) {
    { L::target(c) } -> std::same_as<TargetCoefficients>;
    { L::prediction } -> std::convertible_to<Prediction>;
};

namespace detail {
/// Checks a batch and calls fn(j, c_z, c_ε) per column with the finite target coefficients.
template <Loss L, class Path, class P, class Z, class E, class T, class Fn>
void for_each_column(const char* where, const char* pred_name, const Path& path, const P& pred, const Z& z, const E& eps, const T& t, Fn&& fn) {
    fmd::detail::require_nonempty(where, pred_name, pred);
    fmd::detail::require_same_shape(where, pred_name, pred, "z", z);
    fmd::detail::require_same_shape(where, pred_name, pred, "eps", eps);
    if (t.rows() != 1 || t.cols() != pred.cols()) fmd::detail::fail(where, "t", "must be 1 x ", pred.cols(), ", got ", t.rows(), " x ", t.cols());
    for (Eigen::Index j = 0; j < pred.cols(); ++j) {
        const double tj = static_cast<double>(t(j));
        fmd::detail::require_time(where, "t", tj);
        const auto tc = L::target(path.coefficients(tj));
        if (!std::isfinite(tc.z_coef) || !std::isfinite(tc.eps_coef))
            fmd::detail::fail(where, "t", "makes the ", name(L::prediction), " target singular at t = ", tj, " (theory.md §4.3: sample t from [0, 1 − δ])");
        fn(j, tc.z_coef, tc.eps_coef);
    }
}
}  // namespace detail

/// Writes the regression targets c_z z + c_ε ε of a batch (z: data, eps: noise, t: 1 x n).
template <Loss L, class Path, Dense Z, Dense E, Dense T, Dense O>
void target(const L&, const Path& path, const Z& z, const E& eps, const T& t, O&& out) {
    using S = scalar_of<Z>;
    fmd::detail::require_same_shape("loss::target", "z", z, "out", out);
    detail::for_each_column<L>("loss::target", "z", path, z, z, eps, t, [&](Eigen::Index j, double cz, double ce) {
        out.col(j) = S(cz) * z.col(j) + S(ce) * eps.col(j);
    });
}

/// L = (1/(N d)) Σ_j ‖pred_j − target_j‖² and ∂L/∂pred = 2(pred − target)/(N d) (theory.md §6.7),
/// written into grad (which may be pred itself). Allocates nothing. Throws if a target is not
/// finite (e.g. CSM at β_t = 0): sample t from [0, 1 − δ] (theory.md §4.3).
template <Loss L, class Path, Dense P, Dense Z, Dense E, Dense T, Dense G>
scalar_of<P> value_and_gradient(const L&, const Path& path, const P& pred, const Z& z, const E& eps, const T& t, G&& grad) {
    using S = scalar_of<P>;
    fmd::detail::require_same_shape("loss::value_and_gradient", "pred", pred, "grad", grad);
    const S g = S(2.0 / static_cast<double>(pred.size()));
    double total = 0.0;
    detail::for_each_column<L>("loss::value_and_gradient", "pred", path, pred, z, eps, t, [&](Eigen::Index j, double czd, double ced) {
        const S cz = S(czd), ce = S(ced);
        for (Eigen::Index i = 0; i < pred.rows(); ++i) {
            const S r = pred(i, j) - (cz * z(i, j) + ce * eps(i, j));
            total += static_cast<double>(r) * static_cast<double>(r);
            grad(i, j) = g * r;
        }
    });
    return S(total / static_cast<double>(pred.size()));
}

/// Loss value only; the same arithmetic and checks as value_and_gradient.
template <Loss L, class Path, Dense P, Dense Z, Dense E, Dense T>
scalar_of<P> value(const L&, const Path& path, const P& pred, const Z& z, const E& eps, const T& t) {
    using S = scalar_of<P>;
    double total = 0.0;
    detail::for_each_column<L>("loss::value", "pred", path, pred, z, eps, t, [&](Eigen::Index j, double czd, double ced) {
        const S cz = S(czd), ce = S(ced);
        for (Eigen::Index i = 0; i < pred.rows(); ++i) {
            const S r = pred(i, j) - (cz * z(i, j) + ce * eps(i, j));
            total += static_cast<double>(r) * static_cast<double>(r);
        }
    });
    return S(total / static_cast<double>(pred.size()));
}

}  // namespace fmd::loss

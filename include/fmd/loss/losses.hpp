#pragma once
// Regression losses of theory.md §6. On a Gaussian path every target is linear in (z, ε):
// target = c_z z + c_ε ε, so value_and_gradient computes value and gradient for all of them
// without building the target. A loss can be wrapped with a time weighting λ(t) and a distance
// (loss/weighting.hpp): L = (1/N) Σ_j λ(t_j) D(pred_j − target_j), D = ‖r‖²/d by default.
//
// Loss concept (docs/concepts.md): `static constexpr Prediction prediction` and
// `static TargetCoefficients coefficients(const PathCoefficients&)`. On a path that is not Gaussian
// only velocity losses apply: the target is the path's own conditional velocity u_t(x_t|ε, z).
#include <cmath>
#include <concepts>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/loss/weighting.hpp>
#include <fmd/path/concepts.hpp>
#include <fmd/path/gaussian_path.hpp>
#include <fmd/path/prediction.hpp>

namespace fmd::loss {

/// Coefficients of target = z_coef·z + eps_coef·ε.
struct TargetCoefficients {
    /// \var TargetCoefficients::z_coef
    /// Coefficient of the data z.
    /// \var TargetCoefficients::eps_coef
    /// Coefficient of the noise ε.
    double z_coef, eps_coef;
};

/// CFM: velocity regression, target α̇ z + β̇ ε (theory.md §6.2). Linear schedule: x1 − x0.
/// On any ProbabilityPath: the path's conditional velocity.
struct Cfm {
    static constexpr Prediction prediction = Prediction::velocity;  ///< what the network predicts
    /// The target's coefficients (z, ε) at path coefficients c.
    static TargetCoefficients coefficients(const PathCoefficients& c) { return {c.d_alpha, c.d_beta}; }
};
/// CSM: score regression, target −ε/β_t (theory.md §6.3); singular at β_t = 0.
struct Csm {
    static constexpr Prediction prediction = Prediction::score;  ///< what the network predicts
    /// The target's coefficients (z, ε) at path coefficients c.
    static TargetCoefficients coefficients(const PathCoefficients& c) { return {0.0, -1.0 / c.beta}; }
};
/// ε-prediction, target ε (theory.md §6.4).
struct EpsilonPrediction {
    static constexpr Prediction prediction = Prediction::epsilon;  ///< what the network predicts
    /// The target's coefficients (z, ε) at path coefficients c.
    static TargetCoefficients coefficients(const PathCoefficients&) { return {0.0, 1.0}; }
};
/// x1-prediction (denoiser), target z (theory.md §6.5).
struct X1Prediction {
    static constexpr Prediction prediction = Prediction::x1;  ///< what the network predicts
    /// The target's coefficients (z, ε) at path coefficients c.
    static TargetCoefficients coefficients(const PathCoefficients&) { return {1.0, 0.0}; }
};

inline constexpr Cfm cfm{};                   ///< the CFM loss (velocity regression)
inline constexpr Csm csm{};                   ///< the CSM loss (score regression)
inline constexpr EpsilonPrediction epsilon{}; ///< the ε-prediction loss
inline constexpr X1Prediction x1{};           ///< the x1-prediction (denoiser) loss

/// A loss: what it predicts and its target as c_z z + c_ε ε given the path coefficients at t.
template <class L>
concept Loss = requires(const PathCoefficients& c) {
    { L::coefficients(c) } -> std::same_as<TargetCoefficients>;
    { L::prediction } -> std::convertible_to<Prediction>;
};

/// A loss with a time weighting λ(t) and a distance D (loss/weighting.hpp); also a Loss.
/// \code
///   auto objective = fmd::loss::weighted(fmd::loss::epsilon, fmd::loss::MinSnr{5.0});
///   auto robust = fmd::loss::weighted(fmd::loss::cfm, fmd::loss::Unweighted{}, fmd::loss::PseudoHuber{0.03});
/// \endcode
template <Loss L, class W = Unweighted, class D = SquaredError>
struct Weighted {
    static_assert(Distance<D, float> || Distance<D, double>,
                  "fmd::loss::Weighted: the distance needs `double value(const R& r) const` and `double value_and_gradient(R&& r) const`");
    static constexpr Prediction prediction = L::prediction;  ///< what the network predicts (L's)
    /// L's target coefficients.
    static TargetCoefficients coefficients(const PathCoefficients& c) { return L::coefficients(c); }
    W weighting{};  ///< the time weighting λ(t)
    D distance{};   ///< the per-sample distance D
};
/// Weighted<L, W, D> from a loss value, e.g. weighted(loss::epsilon, loss::MinSnr{5.0}).
template <Loss L, class W, class D = SquaredError>
Weighted<L, W, D> weighted(const L&, W weighting, D distance = {}) {
    return {std::move(weighting), std::move(distance)};
}

namespace detail {
template <class L>
struct parts {
    using weighting_type = Unweighted;
    using distance_type = SquaredError;
    static Unweighted weighting(const L&) { return {}; }
    static SquaredError distance(const L&) { return {}; }
};
template <class L, class W, class D>
struct parts<Weighted<L, W, D>> {
    using weighting_type = W;
    using distance_type = D;
    static const W& weighting(const Weighted<L, W, D>& l) { return l.weighting; }
    static const D& distance(const Weighted<L, W, D>& l) { return l.distance; }
};
template <class L>
constexpr bool is_plain = std::same_as<typename parts<L>::weighting_type, Unweighted> && std::same_as<typename parts<L>::distance_type, SquaredError>;

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
        const auto tc = L::coefficients(path.coefficients(tj));
        if (!std::isfinite(tc.z_coef) || !std::isfinite(tc.eps_coef))
            fmd::detail::fail(where, "t", "makes the ", name(L::prediction), " target singular at t = ", tj, " (theory.md §4.3: sample t from [0, 1 − δ])");
        fn(j, tc.z_coef, tc.eps_coef);
    }
}

/// λ(t_j) of column j (1 for Unweighted), checked finite and >= 0.
template <class L, class Path>
double weight_at(const char* where, const L& l, const Path& path, double t) {
    if constexpr (std::same_as<typename parts<L>::weighting_type, Unweighted>) {
        return 1.0;
    } else {
        static_assert(Weighting<typename parts<L>::weighting_type, Path>,
                      "fmd::loss: the weighting needs `double operator()(const Path& path, double t) const`");
        const double w = static_cast<double>(parts<L>::weighting(l)(path, t));
        if (!(w >= 0.0) || !std::isfinite(w)) fmd::detail::fail(where, "t", "gets the loss weight λ = ", w, " at t = ", t, " (must be finite and >= 0)");
        return w;
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

/// L = (1/N) Σ_j λ(t_j) D(pred_j − target_j) and ∂L/∂pred written into grad (which may be pred
/// itself); unweighted squared error: L = (1/(N d)) Σ_j ‖pred_j − target_j‖², ∂L/∂pred = 2(pred − target)/(N d)
/// (theory.md §6.7). Allocates nothing. Throws if a target is not finite (e.g. CSM at β_t = 0):
/// sample t from [0, 1 − δ] (theory.md §4.3).
template <Loss L, class Path, Dense P, Dense Z, Dense E, Dense T, Dense G>
scalar_of<P> value_and_gradient(const L& l, const Path& path, const P& pred, const Z& z, const E& eps, const T& t, G&& grad) {
    using S = scalar_of<P>;
    constexpr const char* where = "loss::value_and_gradient";
    fmd::detail::require_same_shape(where, "pred", pred, "grad", grad);
    const double n = static_cast<double>(pred.cols()), d = static_cast<double>(pred.rows());
    double total = 0.0;
    if constexpr (detail::is_plain<L>) {
        const S g = S(2.0 / (n * d));
        detail::for_each_column<L>(where, "pred", path, pred, z, eps, t, [&](Eigen::Index j, double czd, double ced) {
            const S cz = S(czd), ce = S(ced);
            for (Eigen::Index i = 0; i < pred.rows(); ++i) {
                const S r = pred(i, j) - (cz * z(i, j) + ce * eps(i, j));
                total += static_cast<double>(r) * static_cast<double>(r);
                grad(i, j) = g * r;
            }
        });
        return S(total / (n * d));
    } else {
        const auto& dist = detail::parts<L>::distance(l);
        detail::for_each_column<L>(where, "pred", path, pred, z, eps, t, [&](Eigen::Index j, double czd, double ced) {
            const double w = detail::weight_at(where, l, path, static_cast<double>(t(j)));
            auto g = grad.col(j);
            g = pred.col(j) - (S(czd) * z.col(j) + S(ced) * eps.col(j));  // the residual, then its gradient in place
            total += w * dist.value_and_gradient(g);
            g *= S(w / n);
        });
        return S(total / n);
    }
}

/// The same loss against an explicit target (dim x n), e.g. the conditional velocity of a path
/// that is not Gaussian (the trainer's route for those). Same value and gradient as above.
template <Loss L, class Path, Dense P, Dense Tg, Dense T, Dense G>
scalar_of<P> value_and_gradient_to(const L& l, const Path& path, const P& pred, const Tg& target, const T& t, G&& grad) {
    using S = scalar_of<P>;
    constexpr const char* where = "loss::value_and_gradient_to";
    fmd::detail::require_nonempty(where, "pred", pred);
    fmd::detail::require_same_shape(where, "pred", pred, "target", target);
    fmd::detail::require_same_shape(where, "pred", pred, "grad", grad);
    if (t.rows() != 1 || t.cols() != pred.cols()) fmd::detail::fail(where, "t", "must be 1 x ", pred.cols(), ", got ", t.rows(), " x ", t.cols());
    const double n = static_cast<double>(pred.cols()), d = static_cast<double>(pred.rows());
    const auto& dist = detail::parts<L>::distance(l);
    double total = 0.0;
    for (Eigen::Index j = 0; j < pred.cols(); ++j) {
        const double tj = static_cast<double>(t(j));
        fmd::detail::require_time(where, "t", tj);
        const double w = detail::weight_at(where, l, path, tj);
        if constexpr (detail::is_plain<L>) {
            const S g = S(2.0 / (n * d));
            for (Eigen::Index i = 0; i < pred.rows(); ++i) {
                const S r = pred(i, j) - target(i, j);
                total += static_cast<double>(r) * static_cast<double>(r) / d;
                grad(i, j) = g * r;
            }
        } else {
            auto g = grad.col(j);
            g = pred.col(j) - target.col(j);
            total += w * dist.value_and_gradient(g);
            g *= S(w / n);
        }
    }
    return S(total / n);
}

/// Loss value only; the same arithmetic and checks as value_and_gradient.
template <Loss L, class Path, Dense P, Dense Z, Dense E, Dense T>
scalar_of<P> value(const L& l, const Path& path, const P& pred, const Z& z, const E& eps, const T& t) {
    using S = scalar_of<P>;
    const double n = static_cast<double>(pred.cols()), d = static_cast<double>(pred.rows());
    double total = 0.0;
    detail::for_each_column<L>("loss::value", "pred", path, pred, z, eps, t, [&](Eigen::Index j, double czd, double ced) {
        const S cz = S(czd), ce = S(ced);
        if constexpr (detail::is_plain<L>) {
            for (Eigen::Index i = 0; i < pred.rows(); ++i) {
                const S r = pred(i, j) - (cz * z(i, j) + ce * eps(i, j));
                total += static_cast<double>(r) * static_cast<double>(r);
            }
        } else {
            total += detail::weight_at("loss::value", l, path, static_cast<double>(t(j))) *
                     detail::parts<L>::distance(l).value(pred.col(j) - (cz * z.col(j) + ce * eps.col(j)));
        }
    });
    return detail::is_plain<L> ? S(total / (n * d)) : S(total / n);
}

}  // namespace fmd::loss

#pragma once
// Time weightings λ(t) and distances D of a regression loss (theory.md §6.6–§6.7), as policies:
//   L = (1/N) Σ_j λ(t_j) D(pred_j − target_j)
// Wrap a loss with them through loss::weighted(loss, weighting, distance) (loss/losses.hpp).
//
// Weighting concept: `double operator()(const Path& path, double t) const`, finite and >= 0. The
// SNR-based ones read α_t, β_t from a Gaussian path (path.coefficients(t)).
// Distance concept: `double value(const R& r) const` for a residual column r, and
// `double value_and_gradient(R&& r) const`, which returns D(r) and overwrites r with ∂D/∂r.
#include <algorithm>
#include <cmath>
#include <concepts>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

namespace fmd::loss {

/// λ(t) = 1.
struct Unweighted {
    /// 1 at every t.
    template <class Path>
    double operator()(const Path&, double) const { return 1.0; }
};

/// Min-SNR-γ (Hang et al., 2023): λ(t) = min(SNR_t, γ)/SNR_t with SNR_t = α_t²/β_t², the form
/// for ε-prediction; it caps the weight of nearly clean times. For the x1 loss multiply by SNR_t,
/// for velocity see theory.md §6.6 (equivalent weights).
struct MinSnr {
    double gamma = 5.0;  ///< the cap γ (> 0)
    /// λ(t) on `path` (a GaussianProbabilityPath); throws fmd::invalid_argument naming 'gamma' unless finite and > 0.
    template <class Path>
    double operator()(const Path& path, double t) const {
        if (!(gamma > 0.0) || !std::isfinite(gamma)) detail::fail("loss::MinSnr", "gamma", "must be finite and > 0, got ", gamma);
        const auto c = path.coefficients(t);
        if (c.alpha == 0.0) return 1.0;  // SNR → 0: min(SNR, γ)/SNR → 1
        if (c.beta == 0.0) return 0.0;   // SNR → ∞
        const double snr = (c.alpha * c.alpha) / (c.beta * c.beta);
        return std::min(snr, gamma) / snr;
    }
};

/// EDM's loss weight (Karras et al., 2022) for the x1 (denoiser) loss: with σ = β_t/α_t,
/// λ = (σ² + σ_data²)/(σ·σ_data)², which makes the effective training target unit-variance.
struct EdmWeight {
    double sigma_data = 0.5;  ///< standard deviation of the data (> 0)
    /// λ(t) on `path`; throws fmd::invalid_argument naming 'sigma_data' (not finite and > 0) or 't'
    /// where σ = β/α = 0 (t = 1).
    template <class Path>
    double operator()(const Path& path, double t) const {
        if (!(sigma_data > 0.0) || !std::isfinite(sigma_data)) detail::fail("loss::EdmWeight", "sigma_data", "must be finite and > 0, got ", sigma_data);
        const auto c = path.coefficients(t);
        if (c.alpha == 0.0) return 1.0 / (sigma_data * sigma_data);  // σ → ∞
        const double sigma = c.beta / c.alpha;
        if (sigma == 0.0) detail::fail("loss::EdmWeight", "t", "gives σ = β/α = 0 (t = ", t, "): the EDM weight is infinite there; sample t below 1");
        return (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma * sigma_data * sigma_data);
    }
};

/// Any callable λ(t): loss::TimeWeight{[](double t) { return 1 + t; }}.
template <class F>
struct TimeWeight {
    F f;  ///< the callable λ(t)
    /// λ(t) = f(t), whatever the path.
    template <class Path>
    double operator()(const Path&, double t) const { return static_cast<double>(f(t)); }
};
/// Deduces F from the callable.
template <class F>
TimeWeight(F) -> TimeWeight<F>;

/// D(r) = ‖r‖²/d (the mean squared error over the d coordinates): the default.
struct SquaredError {
    /// D(r) for a residual column r.
    template <class R>
    double value(const R& r) const {
        return r.template cast<double>().squaredNorm() / static_cast<double>(r.size());
    }
    /// Returns D(r) and overwrites r with ∂D/∂r = 2r/d.
    template <class R>
    double value_and_gradient(R&& r) const {
        const double v = value(r);
        r *= static_cast<scalar_of<R>>(2.0 / static_cast<double>(r.size()));
        return v;
    }
};

/// Pseudo-Huber (Charbonnier) distance of the improved consistency-training recipe:
/// D(r) = √(‖r‖² + c²) − c, quadratic below c and linear above; ∂D/∂r = r/√(‖r‖² + c²).
/// iCT uses c = 0.00054·√d for images scaled to [−1, 1].
struct PseudoHuber {
    double c = 0.03;  ///< the scale c (> 0) where the distance turns from quadratic to linear
    /// D(r) for a residual column r; throws fmd::invalid_argument naming 'c' unless finite and > 0.
    template <class R>
    double value(const R& r) const {
        check();
        return std::sqrt(r.template cast<double>().squaredNorm() + c * c) - c;
    }
    /// Returns D(r) and overwrites r with ∂D/∂r = r/√(‖r‖² + c²).
    template <class R>
    double value_and_gradient(R&& r) const {
        check();
        const double root = std::sqrt(r.template cast<double>().squaredNorm() + c * c);
        r *= static_cast<scalar_of<R>>(1.0 / root);
        return root - c;
    }

private:
    void check() const {
        if (!(c > 0.0) || !std::isfinite(c)) detail::fail("loss::PseudoHuber", "c", "must be finite and > 0, got ", c);
    }
};

/// The weighting concept: λ(path, t) -> double.
template <class W, class Path>
concept Weighting = requires(const W& w, const Path& p, double t) {
    { w(p, t) } -> std::convertible_to<double>;
};

/// The distance concept, for residual columns of scalar S.
template <class D, class S>
concept Distance = requires(const D& d, Vector<S>& r) {
    { d.value(r) } -> std::convertible_to<double>;
    { d.value_and_gradient(r) } -> std::convertible_to<double>;
};

}  // namespace fmd::loss

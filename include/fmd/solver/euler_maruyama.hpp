#pragma once
// Euler–Maruyama for dX = b_t(X) dt + σ_t dW (theory.md §2.4):
// X′ = X + h b(X, t) + σ_t √h ξ, ξ ~ N(0, I).
#include <cmath>
#include <utility>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/adapters.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/solver/steppers.hpp>

namespace fmd::solver {

/// Euler–Maruyama for dX = b_t(X) dt + σ_t dW (theory.md §2.4): X′ = X + h b(X, t) + σ_t √h ξ; an
/// SdeStepper with σ_t from a SigmaPolicy.
template <class S = double, SigmaPolicy Sigma = ConstantSigma>
class EulerMaruyama {
public:
    using Scalar = S;  ///< float or double
    using sigma_type = Sigma;  ///< the σ_t policy type
    /// Weak order of accuracy.
    static constexpr int order = 1;  // weak order
    static constexpr int nfe_per_step = 1;  ///< drift evaluations per step

    /// σ_t given by the policy `sigma` (held by value).
    explicit EulerMaruyama(Sigma sigma) : sigma_(std::move(sigma)) {}

    /// σ_t.
    double sigma(double t) const { return static_cast<double>(sigma_(t)); }
    /// The σ_t policy.
    const Sigma& sigma_policy() const { return sigma_; }

    /// Advances x (dim × n) in place from t to t + h (h > 0) with drift b, drawing ξ ~ N(0, I) from rng;
    /// throws fmd::invalid_argument naming 't' or 'h' for a non-finite time or a step that is not positive.
    template <class F, class G>
    void step(F&& b, Out<S> x, double t, double h, G& rng) {
        detail::require_step("EulerMaruyama::step", t, h, true);  // √h: forward only
        const double sig = sigma(t);
        if (!(sig >= 0.0) || !std::isfinite(sig)) fmd::detail::fail("EulerMaruyama::step", "sigma", "must be finite and >= 0 at t = ", t, ", got ", sig);
        detail::fit(k_, x);
        b(In<S>(x), t, detail::ref(k_));
        x += S(h) * k_;
        if (sig == 0.0) return;
        fill_normal(k_, rng);
        x += S(sig * std::sqrt(h)) * k_;
    }

private:
    Sigma sigma_;
    Matrix<S> k_;
};

/// EulerMaruyama with a user σ_t callable: euler_maruyama<float>([](double t) { return 0.5 * (1 - t); }).
template <class S = double, SigmaPolicy Sigma>
EulerMaruyama<S, Sigma> euler_maruyama(Sigma sigma) {
    return EulerMaruyama<S, Sigma>(std::move(sigma));
}

}  // namespace fmd::solver

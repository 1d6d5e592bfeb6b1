#pragma once
// DPM-Solver++(2M) [Lu et al. 2022, arXiv 2211.01095, Alg. 2] and its SDE variant, in data (x̂1)
// prediction, in this library's time (noise t = 0, data t = 1; x_t = α_t z + β_t ε, theory.md §3.2).
//
// Derivation. λ_t = log(α_t/β_t) (half log-SNR; increasing in t). By theory.md §5.2 the velocity is
//   u = (β̇/β) x + (D/β) x̂1,   D/β = α λ̇,
// so with the integrating factor 1/β_t the probability-flow ODE is d(x/β)/dt = e^{λ} λ̇ x̂1 and
//   x_t = (β_t/β_s) x_s + β_t ∫_{λ_s}^{λ_t} e^{λ} x̂1 dλ         (exact).
// Freezing x̂1 = x̂1_s gives the first-order step (= the DDIM step of theory.md §7.4):
//   x_t = (β_t/β_s) x_s + α_t (1 − e^{−h}) x̂1_s,   h = λ_t − λ_s.
// 2M replaces x̂1_s by the linear extrapolation in λ through the previous data prediction
// x̂1_p at λ_p (h_p = λ_s − λ_p, r = h_p/h):
//   x_t = (β_t/β_s) x_s + α_t (1 − e^{−h}) [(1 + 1/(2r)) x̂1_s − (1/(2r)) x̂1_p].
//
// SDE variant (η ≥ 0). The SDE dX = [u + (σ²/2) s] dt + σ dW (theory.md §3.7) with
// σ_t² = η·2β_tD_t/α_t (theory.md §7.7: η = 1 is the reverse diffusion, η = 0 the ODE) has the
// linear part (β̇/β − η λ̇) x, and its exponential integrator with frozen x̂1 is exactly
//   x_t = (β_t/β_s) e^{−ηh} x_s + α_t (1 − e^{−(1+η)h}) x̂1_s + β_t √(1 − e^{−2ηh}) ξ,
// ξ ~ N(0, I); the 2nd-order term is the "midpoint" one of k-diffusion's 2M SDE,
//   + α_t (1 − e^{−(1+η)h}) (1/(2r)) (x̂1_s − x̂1_p).
// At η = 0 this is the ODE solver above, number for number.
//
// Endpoints (no special cases in the formulas below; e^{−h} = α_s β_t/(β_s α_t) is taken as 0):
// - From t = 0 with α_0 = 0 (λ_s = −∞, h = ∞): x_t = (β_t/β_0) x_0 + α_t x̂1(x_0, 0), i.e. for
//   β_0 = 1 exactly x_t = β_t x_0 + α_t x̂1 — the DDIM step, and for the linear schedule also
//   the Euler step (theory.md §7.4). The next step's previous λ is −∞ (r = ∞), so its 2M
//   correction weight 1/(2r) is 0: the first two steps are first order. The SDE's first step
//   from α_0 = 0 discards x_0: x_t = α_t x̂1(x_0, 0) + β_t ξ (σ_0 = ∞).
// - To t = 1 with β_1 = 0 (λ_t = +∞, h = ∞): the step is first order, x_1 = α_1 x̂1(x_s, s)
//   (no noise), as in k-diffusion / diffusers' final "denoising" step; the 2M weight would
//   be infinite. x̂1 is evaluated at grid points t_0..t_{n−1} only, never at t = 1.
// - x̂1 comes from the field through GaussianPath::conversion(from, x1) (theory.md §5.2), valid
//   wherever the conversion is: from a velocity it needs D_t ≠ 0 (polynomial n > 1 fails at
//   t = 0), from ε̂ or s it needs α_t > 0 (start at t > 0). The error names 't'.
// NFE: 1 per step, n on n steps. The history (previous x̂1 and λ) is reset by integrate().
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/path/gaussian_path.hpp>
#include <fmd/path/prediction.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/multistep.hpp>
#include <fmd/solver/steppers.hpp>

namespace fmd::solver {

namespace detail {

/// λ_t = log(α_t/β_t) with −∞ at α = 0 and +∞ at β = 0.
inline double half_log_snr(double alpha, double beta) {
    if (alpha == 0.0) return -std::numeric_limits<double>::infinity();
    if (beta == 0.0) return std::numeric_limits<double>::infinity();
    return std::log(alpha) - std::log(beta);
}

/// Shared core of DpmSolver2M (η = 0) and DpmSolver2MSde.
template <class Path, class S>
class DpmCore {
public:
    DpmCore(Path path, Prediction field, double eta, const char* where) : path_(std::move(path)), from_(field), eta_(eta) {
        if (!(eta >= 0.0) || !std::isfinite(eta)) fmd::detail::fail(where, "eta", "must be finite and >= 0, got ", eta);
    }
    const Path& path() const { return path_; }
    Prediction field_prediction() const { return from_; }
    double eta() const { return eta_; }
    void reset() { has_prev_ = false; started_ = false; }

    /// One step; `noise` is called to fill the noise buffer when the step needs noise.
    template <class F, class Noise>
    void advance(const char* where, F& field, Out<S> x, double t, double h, Noise&& noise) {
        detail::require_step(where, t, h, true);
        if (started_) {
            require_continuation(where, t, t_end_);
            if (x.rows() != x1_[0].rows() || x.cols() != x1_[0].cols())
                fmd::detail::fail(where, "x", "changed shape mid-solve; call reset() before a new solve");
        } else {
            for (auto& m : x1_) fit(m, x);
            fit(xi_, x);
            has_prev_ = false;
        }
        const double tn = t + h;
        if (!(h > 0.0) || !(tn <= 1.0 + 1e-12)) fmd::detail::fail(where, "h", "must be > 0 with t + h <= 1, got t = ", t, ", h = ", h);
        const auto cs = path_.coefficients(t);
        const auto ct = path_.coefficients(tn > 1.0 ? 1.0 : tn);
        if (!(cs.beta > 0.0)) fmd::detail::fail(where, "t", "= ", t, " has β = ", cs.beta, ": no step can start at the data end");

        // x̂1 at (x, t) from the field's own prediction (theory.md §5.2); throws at singular t.
        Matrix<S>& cur = x1_[cur_];
        const Affine m = fmd::conversion(path_, from_, Prediction::x1, t);
        field(In<S>(x), t, ref(cur));
        if (m.a != 0.0 || m.b != 1.0) cur = S(m.a) * x + S(m.b) * cur;

        const double ls = half_log_snr(cs.alpha, cs.beta), lt = half_log_snr(ct.alpha, ct.beta);
        const double hl = lt - ls;  // +∞ from α_s = 0 or to β_t = 0
        const double kappa = 1.0 + eta_;
        // e^{−h}, e^{−κh} and 1 − e^{−κh}, 1 − e^{−2ηh} (expm1 for accuracy at small h).
        double decay, data_w, noise_var;
        if (std::isfinite(hl)) {
            decay = std::exp(-eta_ * hl);
            data_w = -std::expm1(-kappa * hl);
            noise_var = -std::expm1(-2.0 * eta_ * hl);
        } else {
            decay = eta_ == 0.0 ? 1.0 : 0.0;
            data_w = 1.0;
            noise_var = eta_ == 0.0 ? 0.0 : 1.0;
        }
        const double c_x = (ct.beta / cs.beta) * decay;  // β_t = 0 at t = 1: the state is dropped
        const double c_data = ct.alpha * data_w;
        // 2M correction weight 1/(2r) = h/(2h_p); 0 without a usable previous prediction and on
        // an infinite step (the final step to β = 0 is first order).
        double w = 0.0;
        if (has_prev_ && std::isfinite(hl)) {
            const double hp = ls - lambda_prev_;
            if (std::isfinite(hp) && hp > 0.0) w = hl / (2.0 * hp);
        }
        const Matrix<S>& prev = x1_[1 - cur_];
        if (w != 0.0) x = S(c_x) * x + S(c_data * (1.0 + w)) * cur - S(c_data * w) * prev;
        else x = S(c_x) * x + S(c_data) * cur;
        const double c_noise = ct.beta * std::sqrt(noise_var);
        if (c_noise > 0.0) {
            noise(xi_);
            x += S(c_noise) * xi_;
        }
        lambda_prev_ = ls;
        has_prev_ = true;
        started_ = true;
        t_end_ = tn;
        cur_ = 1 - cur_;
    }

    /// σ_t² = η·2β_tD_t/α_t, the diffusion coefficient of the SDE this integrates (∞ at α = 0).
    double sigma(double t) const {
        if (eta_ == 0.0) return 0.0;
        const auto c = path_.coefficients(t);
        if (c.alpha == 0.0) return std::numeric_limits<double>::infinity();
        return std::sqrt(eta_ * 2.0 * c.beta_D() / c.alpha);
    }

private:
    Path path_;
    Prediction from_;
    double eta_;
    std::array<Matrix<S>, 2> x1_;
    Matrix<S> xi_;
    int cur_ = 0;
    bool has_prev_ = false, started_ = false;
    double lambda_prev_ = 0.0, t_end_ = 0.0;
};

}  // namespace detail

/// DPM-Solver++(2M), deterministic: order 2, 1 NFE per step (n on n steps). `field` names what
/// the field passed to step() predicts (a velocity by default); see the header comment.
template <class Path, class S = double>
class DpmSolver2M {
public:
    using Scalar = S;  ///< float or double
    using path_type = Path;  ///< the Gaussian path type
    static constexpr int order = 2;  ///< order of accuracy
    static constexpr int nfe_per_step = 1;  ///< field evaluations per step
    static constexpr bool forward_only = true;  ///< from noise towards data only (h > 0)

    /// The path (held by value) and what the field passed to step() predicts.
    explicit DpmSolver2M(Path path, Prediction field = Prediction::velocity) : core_(std::move(path), field, 0.0, "DpmSolver2M") {}

    /// The path.
    const Path& path() const { return core_.path(); }
    /// What the field passed to step() predicts.
    Prediction field_prediction() const { return core_.field_prediction(); }
    /// Forgets the history: the next step starts a new solve (integrate calls it).
    void reset() { core_.reset(); }

    /// Advances x (dim × n) from t to t + h in place (theory.md §7); throws fmd::invalid_argument naming
    /// 'h' unless h > 0 and t + h ≤ 1, 't' where β_t = 0 or the step does not continue the last one
    /// (call reset() first), 'x' when the batch shape changed mid-solve.
    template <class F>
    void step(F&& field, Out<S> x, double t, double h) {
        core_.advance("DpmSolver2M::step", field, x, t, h, [](Matrix<S>&) {});
    }

private:
    detail::DpmCore<Path, S> core_;
};

/// DPM-Solver++(2M) SDE with noise level η ≥ 0 (η = 1: reverse diffusion, the default; η = 0:
/// DpmSolver2M). 1 NFE per step. An SdeStepper whose sigma(t) = √(η·2βD/α) is the diffusion
/// coefficient it discretizes; it takes the model field itself (a PathStepper), so sample with
///   `fmd::sample(u, x, grid, stepper, rng)`   or   `fmd::integrate(u, x, grid, stepper, rng)`,
/// not the path overload of sample (which wraps u into the EM drift u + σ²/2 s).
template <class Path, class S = double>
class DpmSolver2MSde {
public:
    using Scalar = S;  ///< float or double
    using path_type = Path;  ///< the Gaussian path type
    static constexpr int nfe_per_step = 1;  ///< field evaluations per step

    /// The path (held by value), the noise level η ≥ 0 and what the field predicts; throws
    /// fmd::invalid_argument naming 'eta' when negative or not finite.
    explicit DpmSolver2MSde(Path path, double eta = 1.0, Prediction field = Prediction::velocity)
        : core_(std::move(path), field, eta, "DpmSolver2MSde") {}

    /// The path.
    const Path& path() const { return core_.path(); }
    /// What the field passed to step() predicts.
    Prediction field_prediction() const { return core_.field_prediction(); }
    /// The noise level η.
    double eta() const { return core_.eta(); }
    /// The diffusion coefficient σ_t = √(η·2βD/α) this solver discretizes.
    double sigma(double t) const { return core_.sigma(t); }
    /// Forgets the history: the next step starts a new solve.
    void reset() { core_.reset(); }

    /// Advances x (dim × n) from t to t + h > 0 in place, drawing the noise from rng; throws as DpmSolver2M::step.
    template <class F, class G>
    void step(F&& field, Out<S> x, double t, double h, G& rng) {
        core_.advance("DpmSolver2MSde::step", field, x, t, h, [&rng](Matrix<S>& xi) { fill_normal(xi, rng); });
    }

private:
    detail::DpmCore<Path, S> core_;
};

/// dpm_solver_2m<float>(path): the deterministic solver for a field of the given prediction.
template <class S = double, class Path>
DpmSolver2M<Path, S> dpm_solver_2m(const Path& path, Prediction field = Prediction::velocity) {
    return DpmSolver2M<Path, S>(path, field);
}
/// dpm_solver_2m_sde<float>(path, eta).
template <class S = double, class Path>
DpmSolver2MSde<Path, S> dpm_solver_2m_sde(const Path& path, double eta = 1.0, Prediction field = Prediction::velocity) {
    return DpmSolver2MSde<Path, S>(path, eta, field);
}

}  // namespace fmd::solver

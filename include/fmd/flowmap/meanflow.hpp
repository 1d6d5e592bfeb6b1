#pragma once
// MeanFlow (theory.md §9.4): train a two-time network ū_θ(x, t, r) on the MeanFlow identity
//   ū(x_t, t, r) = u_t(x_t) + (r − t)·d/dt ū(x_t, t, r),   d/dt ū = (∂ₓū) u + ∂ₜū,
// regressing ū_θ(x_t, t, r) on sg[v + (r − t)·((∂ₓū_θ) v + ∂ₜū_θ)] with v = u_t(x_t|z) the
// conditional velocity (noise at t = 0, data at t = 1; the current time t ≤ the target time r).
// The total derivative is one tangent() pass of the network along (v, 1, 0) in (x, t, r) that
// reuses the training forward's activations. One-step sampling: X_1 = ε + ū_θ(ε, 0, 1)
// (fmd::sample_flow_map with grid::uniform(1)).
//
// Options follow the paper; the two official implementations differ in the fraction of samples
// with r ≠ t (25 % / 75 %) and the adaptive-weight power p (1 / 0.75): both are options.
//
//   fmd::flowmap::MeanFlow<float> objective({.fraction_unequal = 0.25, .p = 1.0});
//   fmd::train::Trainer trainer(path, objective, net, opt, {.batch_size = 256});   // net: MLP with two_times
#include <algorithm>
#include <cmath>
#include <string_view>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/flowmap/flow_map.hpp>
#include <fmd/loss/time_sampler.hpp>
#include <fmd/nn/concepts.hpp>
#include <fmd/path/concepts.hpp>

namespace fmd::flowmap {

/// Options of MeanFlow (theory.md §9.4).
struct MeanFlowOptions {
    /// Fraction of samples with r ≠ t; the others have r = t and train plain flow matching.
    double fraction_unequal = 0.25;
    /// Adaptive weight 1 / sg((‖Δ‖² + c)^p) per sample (p = 0: plain squared error).
    double p = 1.0;
    double c = 1e-3;  ///< c of the adaptive weight (> 0)
    /// Classifier-free guidance folded into the target (labelled training, paper §4.2):
    /// v ← ω v + κ ū_θ(x_t, t, t | y) + (1 − ω − κ) ū_θ(x_t, t, t | ∅) for samples whose label was
    /// not dropped and whose t lies in [guidance_lo, guidance_hi]; ω = 1, κ = 0 is no guidance.
    double omega = 1.0;
    double kappa = 0.0;  ///< κ, weight of the conditional ū in the guided target
    /// \var MeanFlowOptions::guidance_lo
    /// Smallest t whose target is guided.
    /// \var MeanFlowOptions::guidance_hi
    /// Largest t whose target is guided.
    double guidance_lo = 0.0, guidance_hi = 1.0;
};

/// Draws (t, r) per sample: two times from a time sampler, sorted so t ≤ r; then r ← t for a
/// fraction 1 − fraction_unequal of the samples.
template <class T = time_sampler::Uniform>
struct TimePairs {
    T sampler{};  ///< the time sampler both times are drawn from
    /// Fills the 1 × n rows t and r (t ≤ r); r = t except for a fraction `fraction_unequal` of the columns.
    template <class S, class G>
    void operator()(Row<S>& t, Row<S>& r, double fraction_unequal, G& rng) const {
        sampler(t, rng);
        sampler(r, rng);
        for (Eigen::Index j = 0; j < t.cols(); ++j) {
            if (r(j) < t(j)) std::swap(t(j), r(j));
            if (!(uniform01(rng) < fraction_unequal)) r(j) = t(j);
        }
    }
};

/// The MeanFlow objective (train::Objective) for a TwoTimeNetwork with tangent() on a Gaussian path.
/// The loss returned is the mean squared error per coordinate, (1/(n·d)) Σ‖Δ_j‖² (comparable with
/// loss::Cfm's; the adaptive weight changes the gradient, not this number). Buffers grow to the
/// largest batch: no allocation after the first step.
template <class S, class T = time_sampler::Uniform>
class MeanFlow {
public:
    /// Throws fmd::invalid_argument naming the option when fraction_unequal, p, c, omega, kappa or the
    /// guidance interval is out of range.
    explicit MeanFlow(MeanFlowOptions options = {}, T times = {}) : options_(options), pairs_{std::move(times)} {
        constexpr std::string_view where = "flowmap::MeanFlow";
        const MeanFlowOptions& o = options_;
        if (!(o.fraction_unequal >= 0.0 && o.fraction_unequal <= 1.0)) detail::fail(where, "fraction_unequal", "must lie in [0, 1], got ", o.fraction_unequal);
        if (!(o.p >= 0.0 && std::isfinite(o.p))) detail::fail(where, "p", "must be finite and >= 0, got ", o.p);
        if (!(o.c > 0.0 && std::isfinite(o.c))) detail::fail(where, "c", "must be finite and > 0, got ", o.c);
        if (!std::isfinite(o.omega)) detail::fail(where, "omega", "must be finite, got ", o.omega);
        if (!std::isfinite(o.kappa)) detail::fail(where, "kappa", "must be finite, got ", o.kappa);
        if (!(o.guidance_lo >= 0.0 && o.guidance_lo <= o.guidance_hi && o.guidance_hi <= 1.0))
            detail::fail(where, "guidance_lo", "and guidance_hi must satisfy 0 <= guidance_lo <= guidance_hi <= 1, got ", o.guidance_lo, ", ", o.guidance_hi);
    }

    /// The options.
    const MeanFlowOptions& options() const { return options_; }
    /// Times of the last step (for tests and diagnostics).
    const Row<S>& last_t() const { return t_; }
    /// The r row of the last step (1 × n).
    const Row<S>& last_r() const { return r_; }
    /// The last step's regression target sg[v + (r − t) dū/dt] (dim x n).
    const Matrix<S>& last_target() const { return target_; }

    /// train::Objective: regresses ū_θ(x_t, t, r) on sg[v + (r − t) dū/dt] (theory.md §9.4), with the total
    /// derivative from one tangent pass; leaves ∂L/∂θ in the network and returns the loss. z, eps: dim × n;
    /// labels: one per column or empty.
    template <class Net, class Path, class G>
    S value_and_gradients(Net& net, const Path& path, In<S> z, In<S> eps, Labels labels, G& rng) {
        static_assert(nn::check_two_time_network<Net>());
        static_assert(requires(Net& n, In<S> v, Out<S> out) { n.tangent(v, 1.0, 0.0, out); },
                      "fmd::flowmap::MeanFlow: the network needs `void tangent(In<S> v, double t_dot, double r_dot, Out<S> out)` "
                      "(forward-mode derivative of the last training forward)");
        static_assert(GaussianProbabilityPath<Path, S>, "fmd::flowmap::MeanFlow: the path must be Gaussian (coefficients(t))");
        const Eigen::Index d = z.rows(), n = z.cols();
        resize(d, n);
        pairs_(t_, r_, options_.fraction_unequal, rng);
        for (Eigen::Index j = 0; j < n; ++j) {  // x_t = α z + β ε and the conditional velocity α̇ z + β̇ ε
            const PathCoefficients c = path.coefficients(static_cast<double>(t_(j)));
            xt_.col(j) = S(c.alpha) * z.col(j) + S(c.beta) * eps.col(j);
            v_.col(j) = S(c.d_alpha) * z.col(j) + S(c.d_beta) * eps.col(j);
        }
        if (!labels.empty()) guide(net, labels);

        fmd::detail::two_time_forward<S>("flowmap::MeanFlow", net, In<S>(xt_), t_, r_, labels, Out<S>(pred_));
        net.tangent(In<S>(v_), 1.0, 0.0, Out<S>(target_));  // d/dt ū along (v, 1, 0)
        for (Eigen::Index j = 0; j < n; ++j) target_.col(j) = v_.col(j) + (r_(j) - t_(j)) * target_.col(j);

        // Δ = ū_θ − sg(target); L = (1/n) Σ w_j ‖Δ_j‖², w_j = sg((‖Δ_j‖² + c)^−p).
        double sum = 0.0;
        for (Eigen::Index j = 0; j < n; ++j) {
            grad_.col(j) = pred_.col(j) - target_.col(j);
            const double e = static_cast<double>(grad_.col(j).squaredNorm());
            sum += e;
            const double w = options_.p == 0.0 ? 1.0 : std::pow(e + options_.c, -options_.p);
            grad_.col(j) *= S(2.0 * w / static_cast<double>(n));
        }
        net.backward(In<S>(grad_));
        return static_cast<S>(sum / static_cast<double>(n * d));
    }

private:
    // v ← ω v + κ ū(x_t, t, t | y) + (1 − ω − κ) ū(x_t, t, t | ∅) where the label is kept and t is in range.
    template <class Net>
    void guide(Net& net, Labels labels) {
        const MeanFlowOptions& o = options_;
        if (o.omega == 1.0 && o.kappa == 0.0) return;
        if constexpr (requires { net.null_label(); net.forward(In<S>(xt_), t_, t_, labels, Out<S>(pred_)); }) {
            const Eigen::Index n = xt_.cols();
            const int null = net.null_label();
            std::fill(null_labels_.begin(), null_labels_.end(), null);
            net.forward(In<S>(xt_), t_, t_, Labels(null_labels_), Out<S>(uncond_));
            if (o.kappa != 0.0) net.forward(In<S>(xt_), t_, t_, labels, Out<S>(pred_));
            for (Eigen::Index j = 0; j < n; ++j) {
                const double t = static_cast<double>(t_(j));
                if (labels[static_cast<std::size_t>(j)] == null || t < o.guidance_lo || t > o.guidance_hi) continue;
                v_.col(j) = S(o.omega) * v_.col(j) + S(1.0 - o.omega - o.kappa) * uncond_.col(j);
                if (o.kappa != 0.0) v_.col(j) += S(o.kappa) * pred_.col(j);
            }
        } else {
            detail::fail("flowmap::MeanFlow", "omega", "guidance needs a conditional two-time network (forward(x, t, r, labels, out), null_label())");
        }
    }

    void resize(Eigen::Index d, Eigen::Index n) {
        if (xt_.rows() == d && xt_.cols() == n) return;
        for (Matrix<S>* m : {&xt_, &v_, &pred_, &target_, &grad_, &uncond_}) m->resize(d, n);
        t_.resize(n);
        r_.resize(n);
        null_labels_.resize(static_cast<std::size_t>(n));
    }

    MeanFlowOptions options_;
    TimePairs<T> pairs_;
    Matrix<S> xt_, v_, pred_, target_, grad_, uncond_;
    Row<S> t_, r_;
    std::vector<int> null_labels_;
};

}  // namespace fmd::flowmap

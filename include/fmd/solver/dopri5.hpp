#pragma once
// Adaptive Dormand–Prince 5(4) (Dormand & Prince 1980; Hairer, Nørsett & Wanner, Solving ODEs I,
// §II.4–II.5) for dX/dt = u_t(X) on dim × n batches, with the output observed exactly at the
// points of a user time grid (theory.md §7): the step adapts between output times and is
// clipped to land on each of them, so nothing is interpolated.
//
// Scheme: 7 stages, first same as last (FSAL): stage 7 is u at the new point, which is stage 1
// of the next step. The 5th-order solution is propagated (local extrapolation); the embedded
// 4th-order one only yields the error estimate
//   err = h Σ_i e_i k_i,  e = b − b̂,
//   ‖err‖ = sqrt( mean over all dim·n entries of (err / (atol + rtol·max(|x|, |x_new|)))² ),
// and a step is accepted iff ‖err‖ ≤ 1.
//
// Step-size control: Gustafsson's PI controller as in Hairer's DOPRI5 (β = 0.04):
//   h_new = h · clamp(safety · ‖err_n‖^(−β1) · ‖err_{n−1}‖^(β2), min_factor, max_factor),
// β1 = 1/5 − 0.75·β = 0.17, β2 = β = 0.04, ‖err_{n−1}‖ the previous accepted error, floored at
// 1e-4 (Hairer's initial value too). After a rejection the step shrinks by
// max(min_factor, safety·‖err‖^(−1/5)) and the next accepted step may not grow.
//
// Initial step: options.first_step if > 0, else Hairer's heuristic (Solving ODEs I, §II.4,
// "starting step size"), which costs one extra evaluation.
//
// NFE (exact, per call of integrate): 1 (u at t0) + [1 if the initial step is estimated]
// + 6 · (accepted + rejected). Rejected steps cost their six evaluations too; stage 1 of a retry
// is still valid.
//
// Time runs in double, in either direction: the grid may increase or decrease (the likelihood
// integrates from t = 1 back to 0, theory.md §8.4). Times are not restricted to [0, 1]; fields
// such as the oracles that need t ∈ [0, 1] are only evaluated inside [times.front(), times.back()].
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/solver/integrate.hpp>
#include <fmd/solver/steppers.hpp>

namespace fmd::solver {

/// Options of Dopri5; Dopri5's constructor validates them.
struct Dopri5Options {
    double rtol = 1e-5;        ///< relative tolerance, > 0 and >= 10 · machine epsilon of S
    double atol = 1e-5;        ///< absolute tolerance, > 0
    double first_step = 0.0;   ///< |h| of the first step; 0 = Hairer's heuristic (+1 NFE)
    long max_steps = 100000;   ///< attempted (accepted + rejected) steps allowed per integrate call
    double safety = 0.9;       ///< in (0, 1]
    double min_factor = 0.2;   ///< smallest step-size factor, in (0, 1]
    double max_factor = 10.0;  ///< largest step-size factor, >= 1
    double beta1 = 0.17;       ///< PI exponent of the current error (1/5 − 0.75·β2), in (0, 1]
    double beta2 = 0.04;       ///< PI exponent of the previous error, in [0, beta1]
};

namespace detail {
inline void require_positive_finite(const char* where, const char* argument, double v) {
    if (!(v > 0.0) || !std::isfinite(v)) fmd::detail::fail(where, argument, "must be positive and finite, got ", v);
}
}  // namespace detail

/// Adaptive Dormand–Prince 5(4) with a PI step-size controller (theory.md §7): an AdaptiveStepper
/// that lands exactly on every output time of the grid it integrates over.
template <class S = double>
class Dopri5 {
public:
    using Scalar = S;  ///< float or double
    static constexpr int order = 5;            ///< order of the propagated solution (an AdaptiveStepper)
    static constexpr int error_order = 4;      ///< order of the embedded solution
    static constexpr int nfe_per_attempt = 6;  ///< new evaluations per accepted or rejected step (FSAL)

    /// Throws fmd::invalid_argument naming the option that validate() rejects.
    explicit Dopri5(Dopri5Options options = {}) : opt_(options) { validate(opt_); }

    /// Checks every option; throws fmd::error naming the bad one.
    static void validate(const Dopri5Options& o) {
        constexpr const char* where = "Dopri5";
        detail::require_positive_finite(where, "rtol", o.rtol);
        const double floor = 10.0 * static_cast<double>(std::numeric_limits<S>::epsilon());
        if (o.rtol < floor) fmd::detail::fail(where, "rtol", "must be >= 10 machine epsilons of the state scalar (", floor, "), got ", o.rtol);
        detail::require_positive_finite(where, "atol", o.atol);
        if (!(o.first_step >= 0.0) || !std::isfinite(o.first_step)) fmd::detail::fail(where, "first_step", "must be finite and >= 0 (0 = automatic), got ", o.first_step);
        fmd::detail::require_positive_count(where, "max_steps", o.max_steps);
        if (!(o.safety > 0.0 && o.safety <= 1.0)) fmd::detail::fail(where, "safety", "must lie in (0, 1], got ", o.safety);
        if (!(o.min_factor > 0.0 && o.min_factor <= 1.0)) fmd::detail::fail(where, "min_factor", "must lie in (0, 1], got ", o.min_factor);
        if (!(o.max_factor >= 1.0) || !std::isfinite(o.max_factor)) fmd::detail::fail(where, "max_factor", "must be finite and >= 1, got ", o.max_factor);
        if (!(o.beta1 > 0.0 && o.beta1 <= 1.0)) fmd::detail::fail(where, "beta1", "must lie in (0, 1], got ", o.beta1);
        if (!(o.beta2 >= 0.0 && o.beta2 <= o.beta1)) fmd::detail::fail(where, "beta2", "must lie in [0, beta1 = ", o.beta1, "], got ", o.beta2);
    }

    /// The options.
    const Dopri5Options& options() const { return opt_; }
    /// |h| the controller proposes after the last call (the next step it would try).
    double proposed_step() const { return h_abs_; }

    /// Integrates x in place from times.front() to times.back(), calling observer(t, x) at every
    /// grid time (the first included), exactly at those times. times: >= 2 finite points,
    /// strictly increasing or strictly decreasing. Allocates nothing once the workspace fits x.
    template <class F, class Obs = NoObserver>
    SolveStats integrate(F&& field, Matrix<S>& x, const std::vector<double>& times, Obs&& observer = {}) {
        constexpr const char* where = "Dopri5::integrate";
        check_times(where, times);
        fmd::detail::require_nonempty(where, "x", x);
        fmd::detail::require_finite(where, "x", x);
        fit(x);
        const double t_end = times.back();
        const double dir = t_end > times.front() ? 1.0 : -1.0;
        const double span = std::abs(t_end - times.front());

        SolveStats stats;
        double t = times.front();
        observer(t, std::as_const(x));
        field(In<S>(x), t, Out<S>(k1_));
        ++stats.nfe;
        h_abs_ = opt_.first_step > 0.0 ? std::min(opt_.first_step, span) : initial_step(field, x, t, dir, span, stats);

        double err_prev = 1e-4;
        bool after_reject = false;
        std::size_t next = 1;
        while (next < times.size()) {
            const double t_out = times[next];
            const double remaining = std::abs(t_out - t);
            if (stats.steps + stats.rejected >= opt_.max_steps)
                fmd::detail::fail_numerical(where, "max_steps", "(", opt_.max_steps, " attempted steps) reached at t = ", t, " before t = ", t_end, "; raise it or loosen rtol/atol");
            // Land on t_out when within 1% of it (Hairer's rule), so no sliver step follows.
            const bool lands = 1.01 * h_abs_ >= remaining;
            const double h_try = lands ? remaining : h_abs_;
            const double t_new = lands ? t_out : t + dir * h_try;
            const double h = t_new - t;  // signed; exactly what the stages span
            if (!(std::abs(h) > 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(t))))
                fmd::detail::fail_numerical(where, "field", "needs a step below the time resolution at t = ", t, " (the solution is non-finite or too stiff for an explicit method)");

            attempt(field, x, t, h, t_new);
            stats.nfe += nfe_per_attempt;
            const double err = error_norm(x, h);
            if (err <= 1.0) {
                ++stats.steps;
                t = t_new;
                x = xnew_;
                k1_.swap(k7_);  // FSAL: u(x_new, t_new) is the next stage 1 (pointer swap)
                double factor = err == 0.0 ? opt_.max_factor
                                           : opt_.safety * std::pow(err, -opt_.beta1) * std::pow(err_prev, opt_.beta2);
                factor = std::clamp(factor, opt_.min_factor, after_reject ? 1.0 : opt_.max_factor);
                err_prev = std::max(err, 1e-4);
                const double proposal = std::abs(h) * factor;
                // A step shortened to land on an output time says little about the step the
                // solution allows: keep the longer of the two proposals.
                h_abs_ = lands && h_try < h_abs_ ? std::max(proposal, h_abs_) : proposal;
                after_reject = false;
                if (lands) {
                    observer(t, std::as_const(x));
                    ++next;
                }
            } else {
                ++stats.rejected;
                const double factor = std::isfinite(err) ? std::max(opt_.min_factor, opt_.safety * std::pow(err, -0.2)) : opt_.min_factor;
                h_abs_ = std::abs(h) * std::min(factor, 1.0);
                after_reject = true;
            }
        }
        return stats;
    }

    /// Integrates x in place from t0 to t1 (either order).
    template <class F>
    SolveStats integrate(F&& field, Matrix<S>& x, double t0, double t1) {
        const std::vector<double> times{t0, t1};
        return integrate(std::forward<F>(field), x, times, NoObserver{});
    }

private:
    // Dormand–Prince 5(4) tableau: nodes c, stage weights a, 5th-order weights b (= row 7 of a),
    // error weights e = b − b̂ (b̂ the embedded 4th-order weights).
    static constexpr double c2 = 1.0 / 5, c3 = 3.0 / 10, c4 = 4.0 / 5, c5 = 8.0 / 9;
    static constexpr double a21 = 1.0 / 5;
    static constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
    static constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
    static constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561, a54 = -212.0 / 729;
    static constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247, a64 = 49.0 / 176, a65 = -5103.0 / 18656;
    static constexpr double b1 = 35.0 / 384, b3 = 500.0 / 1113, b4 = 125.0 / 192, b5 = -2187.0 / 6784, b6 = 11.0 / 84;
    static constexpr double e1 = 71.0 / 57600, e3 = -71.0 / 16695, e4 = 71.0 / 1920, e5 = -17253.0 / 339200, e6 = 22.0 / 525, e7 = -1.0 / 40;

    static void check_times(const char* where, const std::vector<double>& g) {
        if (g.size() < 2) fmd::detail::fail(where, "times", "needs at least 2 time points, got ", g.size());
        for (std::size_t k = 0; k < g.size(); ++k)
            if (!std::isfinite(g[k])) fmd::detail::fail(where, "times", "point ", k, " is not finite (", g[k], ")");
        const bool up = g[1] > g[0];
        for (std::size_t k = 1; k < g.size(); ++k)
            if (up ? !(g[k] > g[k - 1]) : !(g[k] < g[k - 1]))
                fmd::detail::fail(where, "times", "must be strictly monotone, but point ", k, " = ", g[k], " follows ", g[k - 1]);
    }

    void fit(const Matrix<S>& x) {
        for (Matrix<S>* m : {&k1_, &k2_, &k3_, &k4_, &k5_, &k6_, &k7_, &y_, &xnew_})
            if (m->rows() != x.rows() || m->cols() != x.cols()) m->resize(x.rows(), x.cols());
    }

    /// One Dormand–Prince step from (t, x) with k1_ = u(x, t): fills k2_..k7_ and xnew_.
    template <class F>
    void attempt(F& field, const Matrix<S>& x, double t, double h, double t_new) {
        y_ = x + S(h * a21) * k1_;
        field(In<S>(y_), t + c2 * h, Out<S>(k2_));
        y_ = x + S(h * a31) * k1_ + S(h * a32) * k2_;
        field(In<S>(y_), t + c3 * h, Out<S>(k3_));
        y_ = x + S(h * a41) * k1_ + S(h * a42) * k2_ + S(h * a43) * k3_;
        field(In<S>(y_), t + c4 * h, Out<S>(k4_));
        y_ = x + S(h * a51) * k1_ + S(h * a52) * k2_ + S(h * a53) * k3_ + S(h * a54) * k4_;
        field(In<S>(y_), t + c5 * h, Out<S>(k5_));
        y_ = x + S(h * a61) * k1_ + S(h * a62) * k2_ + S(h * a63) * k3_ + S(h * a64) * k4_ + S(h * a65) * k5_;
        field(In<S>(y_), t_new, Out<S>(k6_));  // c6 = 1: exactly t_new, never past an output time
        xnew_ = x + S(h * b1) * k1_ + S(h * b3) * k3_ + S(h * b4) * k4_ + S(h * b5) * k5_ + S(h * b6) * k6_;
        field(In<S>(xnew_), t_new, Out<S>(k7_));  // c7 = 1
    }

    /// RMS over all entries of err/(atol + rtol·max(|x|, |x_new|)), accumulated in double.
    double error_norm(const Matrix<S>& x, double h) const {
        const Eigen::Index n = x.size();
        const S *p1 = k1_.data(), *p3 = k3_.data(), *p4 = k4_.data(), *p5 = k5_.data(), *p6 = k6_.data(), *p7 = k7_.data();
        const S *px = x.data(), *pn = xnew_.data();
        double acc = 0.0;
        for (Eigen::Index i = 0; i < n; ++i) {
            const double e = h * (e1 * double(p1[i]) + e3 * double(p3[i]) + e4 * double(p4[i]) + e5 * double(p5[i]) +
                                  e6 * double(p6[i]) + e7 * double(p7[i]));
            const double sc = opt_.atol + opt_.rtol * std::max(std::abs(double(px[i])), std::abs(double(pn[i])));
            acc += (e / sc) * (e / sc);
        }
        const double norm = std::sqrt(acc / static_cast<double>(n));
        return std::isfinite(norm) && xnew_.allFinite() ? norm : std::numeric_limits<double>::infinity();
    }

    /// RMS of v/(atol + rtol·|x|): the scaled norm of the starting-step heuristic.
    double scaled_norm(const Matrix<S>& v, const Matrix<S>& x) const {
        double acc = 0.0;
        for (Eigen::Index i = 0; i < x.size(); ++i) {
            const double r = double(v.data()[i]) / (opt_.atol + opt_.rtol * std::abs(double(x.data()[i])));
            acc += r * r;
        }
        return std::sqrt(acc / static_cast<double>(x.size()));
    }

    /// Hairer's starting step (Solving ODEs I, §II.4): h0 = 0.01·‖x0‖/‖u0‖, one explicit Euler
    /// step of h0 to estimate ‖u′‖, then h = min(100·h0, (0.01/max(‖u0‖, ‖u′‖))^(1/5)), capped
    /// by the interval (so the field is only evaluated inside it). Uses k2_ and y_ as scratch.
    template <class F>
    double initial_step(F& field, const Matrix<S>& x, double t, double dir, double span, SolveStats& stats) {
        const double d0 = scaled_norm(x, x), d1 = scaled_norm(k1_, x);
        double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
        h0 = std::min(h0, span);
        y_ = x + S(dir * h0) * k1_;
        field(In<S>(y_), t + dir * h0, Out<S>(k2_));
        ++stats.nfe;
        k2_ -= k1_;
        const double d2 = scaled_norm(k2_, x) / h0;
        const double dmax = std::max(d1, d2);
        const double h1 = dmax <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / dmax, 1.0 / (error_order + 1));
        const double h = std::min({100.0 * h0, h1, span});
        return std::isfinite(h) && h > 0.0 ? h : span;
    }

    Dopri5Options opt_;
    double h_abs_ = 0.0;
    Matrix<S> k1_, k2_, k3_, k4_, k5_, k6_, k7_, y_, xnew_;
};

}  // namespace fmd::solver


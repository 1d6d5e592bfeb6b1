#pragma once
// Variable-step Adams–Bashforth 2 and 3 on the velocity (explicit linear multistep methods).
//
// Step from t_n to t_n + h with the stored velocities f_{n−j} = u(X_{n−j}, t_{n−j}):
//   X_{n+1} = X_n + Σ_j w_j f_{n−j},   w_j = ∫_0^h ℓ_j(s) ds,
// ℓ_j the Lagrange basis polynomials on the nodes τ_j = t_{n−j} − t_n (the polynomial through the
// last k velocities, integrated over the step). This is exact for any grid, not only uniform ones;
// on a uniform grid it reduces to the textbook weights (3/2, −1/2)h and (23/12, −16/12, 5/12)h.
//   AB2, previous step h₁ = t_n − t_{n−1}:  w_0 = h (1 + h/(2h₁)),  w_1 = −h²/(2h₁).
//
// History lives in the stepper: the velocities and their times. integrate() calls reset() before
// every solve; driving step() by hand, a call that does not continue the last one (t differs from
// the previous t + h, or the batch shape changed) throws instead of mixing two solves.
//
// Start (bootstrap), chosen so that the global order stays p:
//   AB2: step 1 is Euler (local error O(h²), once: the global error stays O(h²)).
//        NFE on n steps = n. Evaluates at t_0..t_{n−1}, never at the final time.
//   AB3: step 1 is Heun (local error O(h³)), step 2 is AB2 (local error O(h³)), then AB3.
//        NFE on n steps = n + 1 (Heun's extra evaluation at t_1 on the first step). Never
//        evaluates at the final time unless n = 1 (then it is one Heun step).
// nfe_per_step is the steady-state cost (1); last_nfe() is what the last step cost, and
// integrate() sums it, so SolveStats::nfe is exact.
#include <array>
#include <cmath>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/steppers.hpp>

namespace fmd::solver {

namespace detail {
/// ∫_0^h ℓ_0..ℓ_{m−1} for the nodes tau[0] = 0 > tau[1] > tau[2] (m ≤ 3 used).
inline std::array<double, 3> adams_bashforth_weights(const std::array<double, 3>& tau, int m, double h) {
    std::array<double, 3> w{0.0, 0.0, 0.0};
    if (m == 1) {
        w[0] = h;
        return w;
    }
    for (int j = 0; j < m; ++j) {
        // Product of (s − τ_i) over i ≠ j: degree m − 1 ≤ 2; integrate its monomials over [0, h].
        double c0 = 1.0, c1 = 0.0, c2 = 0.0, denom = 1.0;
        for (int i = 0; i < m; ++i) {
            if (i == j) continue;
            // (c0 + c1 s + c2 s²)(s − τ_i)
            c2 = c1 - tau[static_cast<std::size_t>(i)] * c2;
            c1 = c0 - tau[static_cast<std::size_t>(i)] * c1;
            c0 = -tau[static_cast<std::size_t>(i)] * c0;
            denom *= tau[static_cast<std::size_t>(j)] - tau[static_cast<std::size_t>(i)];
        }
        w[static_cast<std::size_t>(j)] = (c0 * h + c1 * h * h / 2 + c2 * h * h * h / 3) / denom;
    }
    return w;
}

/// The continuation check shared by the multistep steppers.
inline void require_continuation(const char* where, double t, double expected) {
    if (!(std::abs(t - expected) <= 1e-12)) {
        fmd::detail::fail(where, "t", "= ", t, " does not continue the stepper's history, which ends at t = ", expected,
                          "; call reset() before a new solve (integrate() does)");
    }
}
}  // namespace detail

/// Adams–Bashforth of order K ∈ {2, 3} with variable steps; see the header comment.
template <int K, class S = double>
class AdamsBashforth {
    static_assert(K == 2 || K == 3, "fmd::solver::AdamsBashforth: K must be 2 or 3");

public:
    using Scalar = S;  ///< float or double
    static constexpr int order = K;  ///< K
    static constexpr int nfe_per_step = 1;  ///< steady state; the AB3 bootstrap costs one more
    /// Exact NFE of a solve over n steps (n ≥ 1).
    static constexpr long nfe(long n) { return K == 2 ? n : n + 1; }

    /// Forget the history: the next step starts a new solve.
    void reset() {
        count_ = 0;
        last_nfe_ = 0;
    }
    /// Field evaluations of the last step.
    int last_nfe() const { return last_nfe_; }
    /// Velocities currently stored (0 after reset, at most K).
    int history() const { return count_; }

    /// Advances x (dim × n) in place from t to t + h with the VectorField u; throws fmd::invalid_argument
    /// naming 't' (not finite) or 'h' (not finite or zero). The first steps of a solve bootstrap the history (theory.md §7.2).
    template <class F>
    void step(F&& u, Out<S> x, double t, double h) {
        constexpr const char* where = "AdamsBashforth::step";
        detail::require_step(where, t, h);
        if (count_ > 0) {
            detail::require_continuation(where, t, t_end_);
            if (x.rows() != f_[0].rows() || x.cols() != f_[0].cols())
                fmd::detail::fail(where, "x", "changed shape mid-solve (", f_[0].rows(), " x ", f_[0].cols(), " -> ", x.rows(), " x ", x.cols(),
                                  "); call reset() before a new solve");
        } else {
            for (auto& f : f_) detail::fit(f, x);  // all buffers now: later steps allocate nothing
            if constexpr (K == 3) {
                detail::fit(y_, x);
                detail::fit(k2_, x);
            }
        }
        // New velocity into the oldest slot, which becomes slot 0.
        head_ = (head_ + K - 1) % K;
        u(In<S>(x), t, detail::ref(f_[static_cast<std::size_t>(head_)]));
        times_[static_cast<std::size_t>(head_)] = t;
        if (count_ < K) ++count_;
        last_nfe_ = 1;
        t_end_ = t + h;

        const Matrix<S>& f0 = slot(0);
        if (K == 3 && count_ == 1) {  // AB3 bootstrap: one Heun step
            y_ = x + S(h) * f0;
            u(In<S>(y_), t + h, detail::ref(k2_));
            x += S(h / 2) * (f0 + k2_);
            last_nfe_ = 2;
            return;
        }
        std::array<double, 3> tau{0.0, 0.0, 0.0};
        for (int j = 1; j < count_; ++j) tau[static_cast<std::size_t>(j)] = time(j) - t;
        const auto w = detail::adams_bashforth_weights(tau, count_, h);
        x += S(w[0]) * f0;
        for (int j = 1; j < count_; ++j) x += S(w[static_cast<std::size_t>(j)]) * slot(j);
    }

private:
    const Matrix<S>& slot(int j) const { return f_[static_cast<std::size_t>((head_ + j) % K)]; }
    double time(int j) const { return times_[static_cast<std::size_t>((head_ + j) % K)]; }

    std::array<Matrix<S>, K> f_;
    std::array<double, K> times_{};
    int head_ = 0, count_ = 0, last_nfe_ = 0;
    double t_end_ = 0.0;
    Matrix<S> y_, k2_;  // AB3's Heun bootstrap
};

/// Adams–Bashforth 2: Euler start, NFE = n on n steps.
template <class S = double>
using AB2 = AdamsBashforth<2, S>;
/// Adams–Bashforth 3: Heun then AB2 start, NFE = n + 1 on n steps.
template <class S = double>
using AB3 = AdamsBashforth<3, S>;

static_assert(OdeStepper<AB2<double>>);
static_assert(OdeStepper<AB3<float>>);

}  // namespace fmd::solver

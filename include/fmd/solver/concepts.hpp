#pragma once
// Stepper concepts (docs/concepts.md), in Boost.Odeint's categories: a fixed-step stepper advances
// x in place from t to t + h; an adaptive stepper integrates over a whole time grid, choosing its
// own steps. integrate / sample / log_likelihood take either kind. Steppers own their workspaces
// (sized on first use, so solves allocate nothing afterwards).
#include <concepts>
#include <vector>

#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

namespace fmd {
/// What a solve cost.
struct SolveStats {
    long nfe = 0;       ///< field evaluations
    long steps = 0;     ///< steps taken
    long rejected = 0;  ///< rejected steps (adaptive solvers; fixed-step solvers reject none)
};
}  // namespace fmd

namespace fmd::solver {

namespace detail {
/// The field type the concepts are checked with: any VectorField works at the call site.
template <class S>
using archetype_field = void (*)(In<S>, double, Out<S>);
}  // namespace detail

/// Fixed-step ODE stepper:
///   - `using Scalar = S;`  `static constexpr int order;`  `static constexpr int nfe_per_step;`
///   - `template <class F> void step(F&& field, Out<S> x, double t, double h);`
///
/// x advances from t to t + h in place. h may be negative (the likelihood integrates backward)
/// unless the stepper declares `static constexpr bool forward_only = true`.
/// Optional, detected: reset() (a multistep history; integrate calls it first) and
/// last_nfe() (when the cost of a step varies; NFE counts use it instead of nfe_per_step).
template <class St>
concept OdeStepper = requires {
    typename St::Scalar;
    { St::order } -> std::convertible_to<int>;
    { St::nfe_per_step } -> std::convertible_to<int>;
} && requires(St& st, Out<typename St::Scalar> x, double t, double h, detail::archetype_field<typename St::Scalar> field) {
    st.step(field, x, t, h);
};

/// SDE stepper for dX = b dt + σ_t dW:
///   - `using Scalar = S;`  `static constexpr int nfe_per_step;`  `double sigma(double t) const;`
///   - `template <class F, class G> void step(F&& drift, Out<S> x, double t, double h, G& rng);`   (h > 0)
///
/// Optional, detected: reset(), last_nfe() as for OdeStepper.
template <class St>
concept SdeStepper = requires(const St& cst, double t) {
    typename St::Scalar;
    { St::nfe_per_step } -> std::convertible_to<int>;
    { cst.sigma(t) } -> std::convertible_to<double>;
} && requires(St& st, Out<typename St::Scalar> x, double t, double h, Rng& rng, detail::archetype_field<typename St::Scalar> field) {
    st.step(field, x, t, h, rng);
};

/// Adaptive ODE stepper (controls its own step size):
///   - `using Scalar = S;`  `static constexpr int order;`
///   - `template <class F, class Obs> SolveStats integrate(F&& field, Matrix<S>& x, const std::vector<double>& times, Obs&& observer);`
///
/// integrates x from times.front() to times.back() (increasing or decreasing), calling
/// observer(t, x) exactly at every grid time, the first included; returns NFE, accepted and rejected steps.
template <class St>
concept AdaptiveStepper = requires {
    typename St::Scalar;
    { St::order } -> std::convertible_to<int>;
} && requires(St& st, Matrix<typename St::Scalar>& x, const std::vector<double>& times, detail::archetype_field<typename St::Scalar> field,
              void (*observer)(double, const Matrix<typename St::Scalar>&)) {
    { st.integrate(field, x, times, observer) } -> std::same_as<SolveStats>;
};

/// True when a fixed-step stepper only steps forward in time (h > 0).
template <class St>
constexpr bool forward_only() {
    if constexpr (requires { St::forward_only; }) return St::forward_only;
    else return false;
}

/// Static check: true when St models OdeStepper; otherwise the first failing static_assert names the
/// concept and the missing member.
template <class St>
constexpr bool check_ode_stepper() {
    static_assert(requires { typename St::Scalar; }, "fmd::solver::OdeStepper: the stepper needs `using Scalar = float;` (or double)");
    if constexpr (requires { typename St::Scalar; }) {
        static_assert(requires { { St::order } -> std::convertible_to<int>; }, "fmd::solver::OdeStepper: missing `static constexpr int order`");
        static_assert(requires { { St::nfe_per_step } -> std::convertible_to<int>; },
                      "fmd::solver::OdeStepper: missing `static constexpr int nfe_per_step`");
        static_assert(requires(St& st, Out<typename St::Scalar> x, detail::archetype_field<typename St::Scalar> f) { st.step(f, x, 0.0, 0.1); },
                      "fmd::solver::OdeStepper: missing `template <class F> void step(F&& field, Out<S> x, double t, double h)`");
    }
    return true;
}

/// True when St models SdeStepper; otherwise the first failing static_assert names the missing member.
template <class St>
constexpr bool check_sde_stepper() {
    static_assert(requires { typename St::Scalar; }, "fmd::solver::SdeStepper: the stepper needs `using Scalar = float;` (or double)");
    if constexpr (requires { typename St::Scalar; }) {
        static_assert(requires { { St::nfe_per_step } -> std::convertible_to<int>; },
                      "fmd::solver::SdeStepper: missing `static constexpr int nfe_per_step`");
        static_assert(requires(const St& st) { { st.sigma(0.5) } -> std::convertible_to<double>; },
                      "fmd::solver::SdeStepper: missing `double sigma(double t) const`");
        static_assert(requires(St& st, Out<typename St::Scalar> x, Rng& rng, detail::archetype_field<typename St::Scalar> f) { st.step(f, x, 0.0, 0.1, rng); },
                      "fmd::solver::SdeStepper: missing `template <class F, class G> void step(F&& drift, Out<S> x, double t, double h, G& rng)`");
    }
    return true;
}

}  // namespace fmd::solver

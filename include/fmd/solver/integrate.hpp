#pragma once
// integrate / sample: drive a stepper over a time grid (theory.md §7), counting field
// evaluations and reporting every grid point to an observer.
#include <algorithm>
#include <concepts>
#include <type_traits>
#include <cstddef>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/adapters.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/grid.hpp>

namespace fmd {


/// An observer that ignores everything.
struct NoObserver {
    /// Does nothing.
    template <class S>
    void operator()(double, const Matrix<S>&) const {}
};

/// Throws fmd::numerical_error if the state stops being finite at any grid point (the requested check).
struct CheckFinite {
    /// Throws fmd::numerical_error naming 'x' when x has a NaN or Inf at time t.
    template <class S>
    void operator()(double t, const Matrix<S>& x) const {
        if (!x.allFinite()) detail::fail_numerical("integrate", "x", "became non-finite at t = ", t);
    }
};

/// Records the first `columns` samples at every grid point: trajectories(k) is dim x columns.
template <class S>
struct TrajectoryRecorder {
    Eigen::Index columns = 0;  ///< number of leading columns recorded
    std::vector<double> times;  ///< the grid times seen
    std::vector<Matrix<S>> states;  ///< dim × columns state at each of those times
    /// Records the first `cols` columns.
    explicit TrajectoryRecorder(Eigen::Index cols) : columns(cols) {}
    /// Appends t and the first `columns` columns of x.
    void operator()(double t, const Matrix<S>& x) {
        times.push_back(t);
        states.emplace_back(x.leftCols(std::min(columns, x.cols())));
    }
};

namespace solver {
/// A stepper that takes the model's own field and converts it through a path it holds
/// (exponential integrators: DpmSolver2M, DpmSolver2MSde). SDE sampling with such a stepper
/// is sample(field, x, grid, stepper, rng): no SdeDrift wrapping, the stepper's path is used.
template <class St>
concept PathStepper = requires(const St& st) { st.path(); };
}  // namespace solver

namespace detail {
/// Multistep steppers keep a history; a new solve must not continue an old one.
template <class St>
void reset_stepper(St& stepper) {
    if constexpr (requires { stepper.reset(); }) stepper.reset();
}
/// NFE of the step just taken: last_nfe() for steppers whose cost varies (Adams–Bashforth 3
/// bootstraps with Heun), else the fixed nfe_per_step.
template <class St>
long step_nfe(const St& stepper) {
    if constexpr (requires { { stepper.last_nfe() } -> std::convertible_to<long>; }) return static_cast<long>(stepper.last_nfe());
    else return St::nfe_per_step;
}

template <class S>
void check_state(const char* where, const Matrix<S>& x, const std::vector<double>& grid) {
    require_nonempty(where, "x", x);
    grid::validate(grid, where);
}
}  // namespace detail

/// Solves dX/dt = u_t(X) over the grid in place, with a fixed-step OdeStepper (grid: increasing,
/// in [0, 1]; one step per interval; reset() first when the stepper has one; NFE = Σ last_nfe()
/// or steps · nfe_per_step) or an AdaptiveStepper (which chooses its steps between the grid
/// times, observed exactly there; the grid may decrease).
template <class St, class F, class Obs = NoObserver>
    requires solver::OdeStepper<St> || solver::AdaptiveStepper<St>
SolveStats integrate(F&& field, Matrix<typename St::Scalar>& x, const std::vector<double>& grid, St& stepper, Obs&& observer = {}) {
    static_assert(VectorField<std::remove_cvref_t<F>, typename St::Scalar>,
                  "fmd::integrate: the field needs `void operator()(In<S> x, double t, Out<S> out)` for the stepper's Scalar S");
    if constexpr (solver::AdaptiveStepper<St>) {
        return stepper.integrate(std::forward<F>(field), x, grid, std::forward<Obs>(observer));
    } else {
        detail::check_state("integrate", x, grid);
        detail::reset_stepper(stepper);
        SolveStats stats;
        observer(grid.front(), std::as_const(x));
        for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
            stepper.step(field, Out<typename St::Scalar>(x), grid[k], grid[k + 1] - grid[k]);
            stats.nfe += detail::step_nfe(stepper);
            ++stats.steps;
            observer(grid[k + 1], std::as_const(x));
        }
        return stats;
    }
}

/// Solves dX = b_t(X) dt + σ_t dW over the grid in place with an SDE stepper and generator
/// (reset and NFE as for the ODE overload). A PathStepper gets the model field instead of b.
template <solver::SdeStepper St, class F, class G, class Obs = NoObserver>
SolveStats integrate(F&& drift, Matrix<typename St::Scalar>& x, const std::vector<double>& grid, St& stepper, G& rng, Obs&& observer = {}) {
    detail::check_state("integrate", x, grid);
    detail::reset_stepper(stepper);
    SolveStats stats;
    observer(grid.front(), std::as_const(x));
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        stepper.step(drift, Out<typename St::Scalar>(x), grid[k], grid[k + 1] - grid[k], rng);
        stats.nfe += detail::step_nfe(stepper);
        ++stats.steps;
        observer(grid[k + 1], std::as_const(x));
    }
    return stats;
}

namespace detail {
/// The error for a stepper of none of the kinds: names what is missing, as an SDE stepper when it
/// has sigma(t), else as an ODE stepper.
template <class St>
constexpr bool report_stepper() {
    if constexpr (requires(const St& st) { st.sigma(0.5); })
        static_assert(solver::check_sde_stepper<St>());
    else
        static_assert(solver::check_ode_stepper<St>());
    return false;
}
}  // namespace detail

/// A stepper of none of the kinds: one error naming what is missing.
template <class St, class F, class X, class... Rest>
    requires(!solver::OdeStepper<St> && !solver::AdaptiveStepper<St> && !solver::SdeStepper<St>)
SolveStats integrate(F&&, X&, const std::vector<double>&, St&, Rest&&...) {
    static_assert(detail::report_stepper<St>(), "fmd::integrate: the stepper models none of OdeStepper, SdeStepper, AdaptiveStepper (docs/concepts.md)");
    return {};
}

/// Generation with the ODE: pushes x (typically N(0, I) at t = 0) through a velocity field, with
/// any fixed-step or adaptive ODE stepper.
template <class St, class F, class Obs = NoObserver>
SolveStats sample(F&& velocity, Matrix<typename St::Scalar>& x, const std::vector<double>& grid, St& stepper, Obs&& observer = {})
    requires solver::OdeStepper<St> || solver::AdaptiveStepper<St>
{
    return integrate(std::forward<F>(velocity), x, grid, stepper, std::forward<Obs>(observer));
}

/// A stepper of none of the kinds: one error naming what is missing.
template <class St, class F, class X, class... Rest>
    requires(!solver::OdeStepper<St> && !solver::AdaptiveStepper<St> && !solver::SdeStepper<St>)
SolveStats sample(F&&, X&, const std::vector<double>&, St&, Rest&&...) {
    static_assert(detail::report_stepper<St>(), "fmd::sample: the stepper models none of OdeStepper, SdeStepper, AdaptiveStepper (docs/concepts.md)");
    return {};
}

/// Generation with the SDE of theory.md §3.7 / §7.6: drift u + σ_t²/2·s, the score converted from
/// the velocity field through the (Gaussian) path (one NFE per step), σ_t from the stepper.
template <class Path, solver::SdeStepper St, class F, class G, class Obs = NoObserver>
    requires(!solver::PathStepper<St>)
SolveStats sample(const Path& path, F& velocity, Matrix<typename St::Scalar>& x, const std::vector<double>& grid, St& stepper, G& rng, Obs&& observer = {}) {
    SdeDrift drift(path, velocity, [&stepper](double t) { return stepper.sigma(t); });
    return integrate(drift, x, grid, stepper, rng, std::forward<Obs>(observer));
}

/// Stochastic generation with a PathStepper (DpmSolver2MSde): the stepper converts the model
/// field through its own path and draws its own noise; one NFE per step.
template <solver::SdeStepper St, class F, class G, class Obs = NoObserver>
    requires solver::PathStepper<St>
SolveStats sample(F&& field, Matrix<typename St::Scalar>& x, const std::vector<double>& grid, St& stepper, G& rng, Obs&& observer = {}) {
    return integrate(std::forward<F>(field), x, grid, stepper, rng, std::forward<Obs>(observer));
}

}  // namespace fmd

#pragma once
// integrate / sample: drive a stepper over a time grid (theory.md §7), counting field
// evaluations and reporting every grid point to an observer.
#include <algorithm>
#include <concepts>
#include <cstddef>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/adapters.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/grid.hpp>

namespace fmd {

/// What a solve cost.
struct SolveStats {
    long nfe = 0;    ///< field evaluations
    long steps = 0;  ///< steps taken
    long rejected = 0;  ///< rejected steps (adaptive solvers; fixed-step solvers reject none)
};

/// An observer that ignores everything.
struct NoObserver {
    template <class S>
    void operator()(double, const Matrix<S>&) const {}
};

/// Throws fmd::error if the state stops being finite at any grid point (the requested check).
struct CheckFinite {
    template <class S>
    void operator()(double t, const Matrix<S>& x) const {
        if (!x.allFinite()) detail::fail("integrate", "x", "became non-finite at t = ", t);
    }
};

/// Records the first `columns` samples at every grid point: trajectories(k) is dim x columns.
template <class S>
struct TrajectoryRecorder {
    Eigen::Index columns = 0;
    std::vector<double> times;
    std::vector<Matrix<S>> states;
    explicit TrajectoryRecorder(Eigen::Index cols) : columns(cols) {}
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

/// Solves dX/dt = u_t(X) over the grid in place. Calls stepper.reset() first when the stepper
/// has one. NFE = Σ last_nfe() for steppers reporting it, else steps · nfe_per_step.
template <solver::OdeStepper St, class F, class Obs = NoObserver>
SolveStats integrate(F&& field, Matrix<typename St::scalar_type>& x, const std::vector<double>& grid, St& stepper, Obs&& observer = {}) {
    detail::check_state("integrate", x, grid);
    detail::reset_stepper(stepper);
    SolveStats stats;
    observer(grid.front(), std::as_const(x));
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        stepper.step(field, Out<typename St::scalar_type>(x), grid[k], grid[k + 1] - grid[k]);
        stats.nfe += detail::step_nfe(stepper);
        ++stats.steps;
        observer(grid[k + 1], std::as_const(x));
    }
    return stats;
}

/// Solves dX = b_t(X) dt + σ_t dW over the grid in place with an SDE stepper and generator
/// (reset and NFE as for the ODE overload). A PathStepper gets the model field instead of b.
template <solver::SdeStepper St, class F, class G, class Obs = NoObserver>
SolveStats integrate(F&& drift, Matrix<typename St::scalar_type>& x, const std::vector<double>& grid, St& stepper, G& rng, Obs&& observer = {}) {
    detail::check_state("integrate", x, grid);
    detail::reset_stepper(stepper);
    SolveStats stats;
    observer(grid.front(), std::as_const(x));
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        stepper.step(drift, Out<typename St::scalar_type>(x), grid[k], grid[k + 1] - grid[k], rng);
        stats.nfe += detail::step_nfe(stepper);
        ++stats.steps;
        observer(grid[k + 1], std::as_const(x));
    }
    return stats;
}

/// Generation with the ODE: pushes x (typically N(0, I) at t = 0) through a velocity field.
template <solver::OdeStepper St, class F, class Obs = NoObserver>
SolveStats sample(F&& velocity, Matrix<typename St::scalar_type>& x, const std::vector<double>& grid, St& stepper, Obs&& observer = {}) {
    return integrate(std::forward<F>(velocity), x, grid, stepper, std::forward<Obs>(observer));
}

/// Generation with the SDE of theory.md §3.7 / §7.6: drift u + σ_t²/2·s, the score converted from
/// the velocity field through the path (one NFE per step), σ_t from the stepper's policy.
template <class Path, solver::SdeStepper St, class F, class G, class Obs = NoObserver>
    requires(!solver::PathStepper<St>)
SolveStats sample(const Path& path, F& velocity, Matrix<typename St::scalar_type>& x, const std::vector<double>& grid, St& stepper, G& rng, Obs&& observer = {}) {
    SdeDrift drift(path, velocity, stepper.sigma_policy());
    return integrate(drift, x, grid, stepper, rng, std::forward<Obs>(observer));
}

/// Stochastic generation with a PathStepper (DpmSolver2MSde): the stepper converts the model
/// field through its own path and draws its own noise; one NFE per step.
template <solver::SdeStepper St, class F, class G, class Obs = NoObserver>
    requires solver::PathStepper<St>
SolveStats sample(F&& field, Matrix<typename St::scalar_type>& x, const std::vector<double>& grid, St& stepper, G& rng, Obs&& observer = {}) {
    return integrate(std::forward<F>(field), x, grid, stepper, rng, std::forward<Obs>(observer));
}

}  // namespace fmd

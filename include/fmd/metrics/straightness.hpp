#pragma once
// Straightness of a flow (theory.md §9.2): S(u) = ∫_0^1 E‖(X_1 − X_0) − u_t(X_t)‖² dt along the
// field's own ODE trajectories from X_0 ~ N(0, I). S = 0 iff every trajectory is a straight line
// traversed at constant speed, and then one Euler step is exact.
//
// Estimator: the trajectories of `x0` (d x N) are integrated with the given fixed-step stepper on
// `grid`; u is evaluated at the left end of every grid interval on the trajectory (the values
// Euler itself uses), and the time integral is the left Riemann sum Σ_k h_k ‖(X_1 − X_0) − u_k‖².
// The result is the mean over the N columns with its standard error (sample SD / √N).
#include <cmath>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/solver/integrate.hpp>

namespace fmd::metrics {

/// The estimate of straightness() (theory.md §9.2).
struct Straightness {
    double value = 0;           ///< S estimated by the mean over the trajectories
    double standard_error = 0;  ///< of that mean
    long nfe = 0;               ///< field evaluations spent (the solve plus one per grid interval)
};

/// Straightness S(u) = ∫ E‖(X_1 − X_0) − u_t(X_t)‖² dt of `field` along its ODE trajectories from the
/// columns of x0 (d × N), integrated by `stepper` on `grid` (theory.md §9.2); the mean over the N
/// columns with its standard error. Throws fmd::invalid_argument for an empty x0 or an invalid grid,
/// fmd::numerical_error naming 'field' when the field gives a non-finite velocity.
template <class F, solver::OdeStepper St>
Straightness straightness(F& field, const Matrix<typename St::Scalar>& x0, const std::vector<double>& grid, St& stepper) {
    using S = typename St::Scalar;
    constexpr const char* where = "metrics::straightness";
    detail::require_nonempty(where, "x0", x0);
    grid::validate(grid, where);
    std::vector<Matrix<S>> states;
    states.reserve(grid.size());
    Matrix<S> x = x0;
    const SolveStats stats = sample(field, x, grid, stepper, [&](double, const Matrix<S>& state) { states.push_back(state); });
    const Matrix<S> chord = x - x0;  // X_1 − X_0 per column
    Vector<double> per(x0.cols());
    per.setZero();
    Matrix<S> u(x0.rows(), x0.cols());
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        field(In<S>(states[k]), grid[k], Out<S>(u));
        const double h = grid[k + 1] - grid[k];
        per += h * (chord - u).template cast<double>().colwise().squaredNorm().transpose();
    }
    if (!per.allFinite()) detail::fail_numerical(where, "field", "gave a non-finite velocity along the trajectories");
    Straightness r;
    const double n = static_cast<double>(per.size());
    r.value = per.mean();
    r.standard_error = per.size() > 1 ? std::sqrt((per.array() - r.value).square().sum() / (n - 1) / n) : 0.0;
    r.nfe = stats.nfe + static_cast<long>(grid.size() - 1);
    return r;
}

}  // namespace fmd::metrics

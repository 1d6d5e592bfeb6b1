// Adaptive Dormand–Prince 5(4) (include/fmd/solver/dopri5.hpp): tolerance met on linear ODEs with
// closed-form solutions and on the Gaussian-mixture oracle (theory.md §8.1), global error
// proportional to the tolerance, NFE falling as rtol loosens, the exact FSAL NFE formula,
// exact output times in both directions, and argument checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/solver/dopri5.hpp>

#include "support.hpp"

namespace {

namespace sch = fmd::schedule;
namespace sol = fmd::solver;
using fmd::Matrix;

using fmd_test::names;

/// x' = A x with A = a I + w J (J the 90° rotation): x(t) = e^{a(t − t0)} R(w (t − t0)) x(t0).
struct Spiral {
    double a = -0.5, w = 3.0;
    long calls = 0;
    template <class S>
    void operator()(fmd::In<S> x, double, fmd::Out<S> out) {
        ++calls;
        out.row(0) = S(a) * x.row(0) - S(w) * x.row(1);
        out.row(1) = S(w) * x.row(0) + S(a) * x.row(1);
    }
    Matrix<double> exact(const Matrix<double>& x0, double dt) const {
        const double g = std::exp(a * dt), c = std::cos(w * dt), s = std::sin(w * dt);
        Matrix<double> r(2, 2);
        r << c, -s, s, c;
        return g * r * x0;
    }
};

/// x' = λ(t) x with λ(t) = 2 cos(3t): x(t) = x(t0) exp((2/3)(sin 3t − sin 3t0)).
struct Oscillating {
    long calls = 0;
    void operator()(fmd::In<double> x, double t, fmd::Out<double> out) {
        ++calls;
        out = 2.0 * std::cos(3.0 * t) * x;
    }
    static Matrix<double> exact(const Matrix<double>& x0, double t0, double t1) {
        return x0 * std::exp((2.0 / 3.0) * (std::sin(3.0 * t1) - std::sin(3.0 * t0)));
    }
};

Matrix<double> starts() {
    Matrix<double> x0(2, 3);
    x0 << 1.0, -0.5, 2.0,  //
        0.0, 1.5, -1.0;
    return x0;
}

/// RMS of the error scaled like the controller's norm (atol = rtol here): the quantity the
/// tolerance bounds per step.
double scaled_error(const Matrix<double>& x, const Matrix<double>& ref, double tol) {
    return std::sqrt(((x - ref).array() / (tol + tol * ref.array().abs())).square().mean());
}

/// Least-squares slope of log y against log x.
double slope(const std::vector<double>& xs, const std::vector<double>& ys) {
    double mx = 0, my = 0;
    const double m = static_cast<double>(xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) {
        mx += std::log(xs[i]) / m;
        my += std::log(ys[i]) / m;
    }
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        sxy += (std::log(xs[i]) - mx) * (std::log(ys[i]) - my);
        sxx += (std::log(xs[i]) - mx) * (std::log(xs[i]) - mx);
    }
    return sxy / sxx;
}

}  // namespace

TEST_CASE("Dopri5 meets the tolerance on linear ODEs with closed-form solutions; error scales with it", "[solver][dopri5]") {
    const std::vector<double> tols{1e-3, 1e-5, 1e-7, 1e-9};
    std::vector<double> spiral_errors, oscillating_errors;
    for (double tol : tols) {
        sol::Dopri5<double> solver({.rtol = tol, .atol = tol});
        Spiral spiral;
        Matrix<double> x = starts();
        solver.integrate(spiral, x, 0.0, 4.0);
        const double e1 = scaled_error(x, spiral.exact(starts(), 4.0), tol);
        Oscillating osc;
        Matrix<double> y = starts();
        solver.integrate(osc, y, 0.0, 5.0);
        const double e2 = scaled_error(y, Oscillating::exact(starts(), 0.0, 5.0), tol);
        INFO("tol = " << tol << ": scaled global error spiral " << e1 << ", oscillating " << e2);
        // Local control bounds the global error by a modest multiple of the tolerance.
        CHECK(e1 <= 5.0);
        CHECK(e2 <= 5.0);
        spiral_errors.push_back(e1 * tol);
        oscillating_errors.push_back(e2 * tol);
    }
    // Global error ∝ tol^1 for a 5(4) pair with local extrapolation (h ∝ tol^(1/5), error ∝ h^5).
    const double p1 = slope(tols, spiral_errors), p2 = slope(tols, oscillating_errors);
    INFO("d log(error) / d log(tol): spiral " << p1 << ", oscillating " << p2);
    CHECK(std::abs(p1 - 1.0) <= 0.25);
    CHECK(std::abs(p2 - 1.0) <= 0.25);
}

TEST_CASE("Dopri5 observes exactly at the output times, forward and backward", "[solver][dopri5]") {
    const std::vector<double> fwd{0.0, 0.1, 0.35, 0.3500001, 1.0, 2.5};
    const std::vector<double> bwd(fwd.rbegin(), fwd.rend());
    for (const auto* grid : {&fwd, &bwd}) {
        const double tol = 1e-8;
        sol::Dopri5<double> solver({.rtol = tol, .atol = tol});
        Spiral spiral;
        Matrix<double> x = starts();
        std::vector<double> seen;
        std::vector<double> errors;
        const double t0 = grid->front();
        auto observer = [&](double t, const Matrix<double>& state) {
            seen.push_back(t);
            errors.push_back(scaled_error(state, spiral.exact(starts(), t - t0), tol));
        };
        const fmd::SolveStats stats = fmd::integrate(spiral, x, *grid, solver, observer);
        REQUIRE(seen.size() == grid->size());
        for (std::size_t k = 0; k < seen.size(); ++k) {
            INFO("output " << k << " at t = " << (*grid)[k]);
            CHECK(seen[k] == (*grid)[k]);  // bit-exact: the step lands on the output time
            CHECK(errors[k] <= 5.0);
        }
        // At least one accepted step per output interval.
        CHECK(stats.steps >= static_cast<long>(grid->size()) - 1);
    }
    // Forward then backward returns to the start.
    sol::Dopri5<double> solver({.rtol = 1e-10, .atol = 1e-10});
    Spiral spiral;
    Matrix<double> x = starts();
    solver.integrate(spiral, x, 0.0, 3.0);
    solver.integrate(spiral, x, 3.0, 0.0);
    CHECK((x - starts()).cwiseAbs().maxCoeff() <= 1e-8);
}

TEST_CASE("Dopri5 NFE = 1 + [1 if the first step is estimated] + 6 (accepted + rejected)", "[solver][dopri5]") {
    SECTION("estimated first step") {
        for (double tol : {1e-3, 1e-6, 1e-9}) {
            sol::Dopri5<double> solver({.rtol = tol, .atol = tol});
            Oscillating osc;
            Matrix<double> x = starts();
            const fmd::SolveStats s = solver.integrate(osc, x, std::vector<double>{0.0, 1.0, 2.0, 5.0});
            INFO("tol = " << tol << ": nfe " << s.nfe << ", accepted " << s.steps << ", rejected " << s.rejected);
            CHECK(s.nfe == osc.calls);
            CHECK(s.nfe == 2 + 6 * (s.steps + s.rejected));
        }
    }
    SECTION("user first step; a too-large one is rejected and counted") {
        sol::Dopri5<double> solver({.rtol = 1e-8, .atol = 1e-8, .first_step = 2.0});
        Spiral spiral;
        Matrix<double> x = starts();
        const fmd::SolveStats s = solver.integrate(spiral, x, 0.0, 4.0);
        INFO("nfe " << s.nfe << ", accepted " << s.steps << ", rejected " << s.rejected);
        CHECK(s.rejected >= 1);
        CHECK(s.nfe == spiral.calls);
        CHECK(s.nfe == 1 + 6 * (s.steps + s.rejected));
        CHECK(scaled_error(x, spiral.exact(starts(), 4.0), 1e-8) <= 5.0);
    }
}

TEMPLATE_TEST_CASE("Dopri5 meets the tolerance on the Gaussian-mixture oracle and NFE falls as rtol loosens", "[solver][dopri5]", float, double) {
    // ring(8, 3, 0.5), linear schedule, 0 → 1 from N(0, I); reference: RK4 with 4096 steps in
    // double (its error ≈ 1e-13, solvers.cpp).
    using S = TestType;
    const fmd::GaussianPath<sch::Linear> path;
    const Matrix<double> x0 = fmd_test::normal_batch(32, 5);
    const Matrix<double> ref = fmd_test::rk4_reference(path, x0);

    fmd::GaussianMixture<S> mix = fmd::GaussianMixture<S>::ring(8, S(3.0), S(0.5));
    fmd::MixtureOracle<fmd::GaussianPath<sch::Linear>, S> oracle(path, mix);
    auto u = oracle.velocity_field();
    const std::vector<double> tols = std::is_same_v<S, float> ? std::vector<double>{1e-2, 1e-3, 1e-4, 1e-5} : std::vector<double>{1e-3, 1e-5, 1e-7, 1e-9};
    long previous_nfe = 0;
    std::vector<double> errors;
    for (double tol : tols) {
        sol::Dopri5<S> solver({.rtol = tol, .atol = tol});
        Matrix<S> x = x0.cast<S>();
        const fmd::SolveStats s = fmd::sample(u, x, {0.0, 1.0}, solver);
        const double e = scaled_error(x.template cast<double>(), ref, tol);
        INFO("tol = " << tol << ": scaled error " << e << ", nfe " << s.nfe << " (" << s.steps << " accepted, " << s.rejected << " rejected)");
        CHECK(e <= 5.0);
        CHECK(s.nfe == 2 + 6 * (s.steps + s.rejected));
        CHECK(s.nfe > previous_nfe);  // tighter tolerance, more evaluations
        previous_nfe = s.nfe;
        errors.push_back(e * tol);
    }
    if constexpr (std::is_same_v<S, double>) {
        const double p = slope(tols, errors);
        INFO("d log(error) / d log(tol) = " << p);
        CHECK(std::abs(p - 1.0) <= 0.25);
    }
}

TEST_CASE("Dopri5 rejects bad options, grids and states naming the argument", "[solver][dopri5][errors]") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.rtol = 0.0}), fmd::error, names("rtol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.rtol = -1e-3}), fmd::error, names("rtol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.rtol = nan}), fmd::error, names("rtol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.rtol = inf}), fmd::error, names("rtol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.rtol = 1e-17}), fmd::error, names("rtol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<float>({.rtol = 1e-8}), fmd::error, names("rtol"));  // below float resolution
    CHECK_NOTHROW(sol::Dopri5<double>({.rtol = 1e-8}));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.atol = 0.0}), fmd::error, names("atol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.atol = nan}), fmd::error, names("atol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.atol = inf}), fmd::error, names("atol"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.first_step = -0.1}), fmd::error, names("first_step"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.max_steps = 0}), fmd::error, names("max_steps"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.safety = 1.5}), fmd::error, names("safety"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.min_factor = 0.0}), fmd::error, names("min_factor"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.max_factor = 0.5}), fmd::error, names("max_factor"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.beta1 = 0.0}), fmd::error, names("beta1"));
    CHECK_THROWS_MATCHES(sol::Dopri5<double>({.beta2 = 0.5}), fmd::error, names("beta2"));

    sol::Dopri5<double> solver;
    Spiral spiral;
    Matrix<double> x = starts();
    CHECK_THROWS_MATCHES(solver.integrate(spiral, x, std::vector<double>{0.0}), fmd::error, names("times"));
    CHECK_THROWS_MATCHES(solver.integrate(spiral, x, std::vector<double>{0.0, 0.5, 0.5}), fmd::error, names("times"));
    CHECK_THROWS_MATCHES(solver.integrate(spiral, x, std::vector<double>{0.0, 0.5, 0.2}), fmd::error, names("times"));
    CHECK_THROWS_MATCHES(solver.integrate(spiral, x, std::vector<double>{1.0, 0.5, 0.7}), fmd::error, names("times"));
    CHECK_THROWS_MATCHES(solver.integrate(spiral, x, std::vector<double>{0.0, nan}), fmd::error, names("times"));
    CHECK_THROWS_MATCHES(solver.integrate(spiral, x, 0.0, 0.0), fmd::error, names("times"));
    Matrix<double> empty(2, 0);
    CHECK_THROWS_MATCHES(solver.integrate(spiral, empty, 0.0, 1.0), fmd::error, names("x"));
    Matrix<double> bad = starts();
    bad(1, 1) = nan;
    CHECK_THROWS_MATCHES(solver.integrate(spiral, bad, 0.0, 1.0), fmd::error, names("x"));

    // A budget too small for the tolerance, and a field that blows up.
    sol::Dopri5<double> tight({.rtol = 1e-10, .atol = 1e-10, .max_steps = 5});
    CHECK_THROWS_MATCHES(tight.integrate(spiral, x, 0.0, 4.0), fmd::error, names("max_steps"));
    auto nan_field = [](fmd::In<double> y, double t, fmd::Out<double> out) {
        if (t > 0.3) out.setConstant(std::numeric_limits<double>::quiet_NaN());
        else out = -y;
    };
    Matrix<double> y = starts();
    CHECK_THROWS_MATCHES(solver.integrate(nan_field, y, 0.0, 1.0), fmd::error, names("field"));
}

// Flow maps on the exact Gaussian-mixture oracle (theory.md §8.1): the exact average velocity
// ū(x, t, r) = (X_r − x)/(r − t) of theory.md §9.4, X_r from a tight Dopri5 solve, checked
// against the MeanFlow identity, the jump sampler (fmd::sample_flow_map), the consistency
// function of theory.md §9.3 and the limit r → t. Linear and cosine schedules, a 2-D mixture of
// four unequal components; noise at t = 0, data at t = 1.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/gaussian_mixture.hpp>
#include <fmd/flowmap/flow_map.hpp>
#include <fmd/path/gaussian_path.hpp>
#include <fmd/schedule/schedules.hpp>
#include <fmd/solver/dopri5.hpp>
#include <fmd/solver/grid.hpp>
#include <fmd/solver/integrate.hpp>
#include <fmd/solver/steppers.hpp>

// One namespace for the whole file: the test sources are compiled together (unity build).
namespace flowmap_oracle_test {


namespace sch = fmd::schedule;
namespace sol = fmd::solver;
using fmd::In;
using fmd::Matrix;
using fmd::Out;
using fmd::Vector;

// Dopri5 tolerance of every "exact" solve: global error ≈ 1e-11 on states of size ≈ 3.
constexpr double ode_tol = 1e-11;

/// Four components with unequal weights and widths, so the trajectories curve.
fmd::GaussianMixture<double> mixture() {
    Matrix<double> mu(2, 4);
    mu << -2.0, 0.5, 1.5, 2.5,  //
        1.0, -1.5, 2.0, -0.5;
    Vector<double> sd(4), w(4);
    sd << 0.3, 0.6, 1.0, 0.4;
    w << 4, 3, 2, 1;
    return {mu, sd, w};
}

/// 2 x n standard normal noise (the t = 0 marginal).
Matrix<double> noise(Eigen::Index n, unsigned seed) {
    fmd::Rng rng(seed);
    Matrix<double> x(2, n);
    fmd::fill_normal(x, rng);
    return x;
}

double max_abs(const Matrix<double>& m) { return m.cwiseAbs().maxCoeff(); }

/// The exact flow map of the oracle (theory.md §9.4): ū(x, t, r) = (X_r − x)/(r − t) with X_r
/// the ODE solution from (x, t); ū(x, t, t) = u_t(x).
template <class Path>
class OracleFlowMap {
public:
    OracleFlowMap(const Path& path, fmd::GaussianMixture<double> mix) : oracle_(path, std::move(mix)) {}

    void operator()(In<double> x, double t, double r, Out<double> out) {
        ++calls;
        if (r == t) {
            oracle_.velocity(x, t, out);
            return;
        }
        out = flow(x, t, r);
        out -= x;
        out /= (r - t);
    }
    /// X_r from X_t = x.
    Matrix<double> flow(In<double> x, double t, double r) {
        Matrix<double> y = x;
        if (r != t) ode_.integrate(oracle_.velocity_field(), y, t, r);
        return y;
    }
    Matrix<double> velocity(In<double> x, double t) {
        Matrix<double> u(x.rows(), x.cols());
        oracle_.velocity(x, t, u);
        return u;
    }
    Matrix<double> average(In<double> x, double t, double r) {
        Matrix<double> u(x.rows(), x.cols());
        (*this)(x, t, r, u);
        return u;
    }
    auto velocity_field() { return oracle_.velocity_field(); }

    long calls = 0;

private:
    fmd::MixtureOracle<Path, double> oracle_;
    sol::Dopri5<double> ode_{{.rtol = ode_tol, .atol = ode_tol}};
};

static_assert(fmd::FlowMap<OracleFlowMap<fmd::GaussianPath<sch::Linear>>, double>);

/// The consistency function of theory.md §9.3: f(x, t) = X_1 = x + (1 − t)·ū(x, t, 1).
template <class Path>
Matrix<double> consistency(OracleFlowMap<Path>& map, const Matrix<double>& x, double t) {
    return x + (1.0 - t) * map.average(x, t, 1.0);
}


TEMPLATE_TEST_CASE("Oracle flow map satisfies the MeanFlow identity (theory.md §9.4)", "[flowmap][oracle]",
                   fmd::GaussianPath<sch::Linear>, fmd::GaussianPath<sch::Cosine>) {
    // ū(x, t, r) = u_t(x) + (r − t)·d/dt ū(X_t, t, r), the total derivative taken by differences
    // of g(s) = ū(X_s, s, r) with X_s the ODE state at s on the trajectory through (x, t).
    // Step h = 1e-4: truncation ≈ h²·g‴ ≈ 1e-8, solver noise ≈ ode_tol/h ≈ 1e-7 before the
    // factor (r − t); tolerance 1e-6 relative to max |ū| (measured ≤ 1.6e-7).
    OracleFlowMap<TestType> map(TestType{}, mixture());
    const Matrix<double> eps = noise(8, 11);
    const double h = 1e-4;
    const std::vector<std::pair<double, double>> pairs{{0.0, 1.0}, {0.0, 0.5}, {0.25, 0.75}, {0.5, 1.0}, {0.1, 0.4}, {0.6, 0.95}};
    for (const auto& [t, r] : pairs) {
        const Matrix<double> x = map.flow(eps, 0.0, t);  // a state on a noise → data trajectory
        auto g = [&](double s) { return map.average(map.flow(x, t, s), s, r); };
        const Matrix<double> avg = map.average(x, t, r);
        // At t = 0 the oracle is undefined for s < 0: second-order one-sided stencil there.
        const Matrix<double> dg = t == 0.0 ? Matrix<double>((-3.0 * avg + 4.0 * g(h) - g(2 * h)) / (2 * h))
                                           : Matrix<double>((g(t + h) - g(t - h)) / (2 * h));
        const Matrix<double> u = map.velocity(x, t);
        const double scale = max_abs(avg);
        const double residual = max_abs(avg - u - (r - t) * dg) / scale;
        const double without = max_abs(avg - u) / scale;  // the identity without its correction
        INFO("t = " << t << ", r = " << r << ": relative residual " << residual << ", without the (r - t) d/dt term " << without);
        CHECK(residual < 1e-6);
        CHECK(without > 1e-2);  // the correction term is what closes the gap
    }
}

TEMPLATE_TEST_CASE("Jumps with the exact flow map land on the Dopri5 trajectory (theory.md §9.4)", "[flowmap][oracle]",
                   fmd::GaussianPath<sch::Linear>, fmd::GaussianPath<sch::Cosine>) {
    // X_r = x + (r − t)·ū(x, t, r) exactly, and exact flow maps compose: one jump 0 → 1 and four
    // jumps over grid::uniform(4) both reproduce a tight Dopri5 solve, at every grid time
    // (measured: one jump 6e-17, the same solve; four jumps 1.4e-11, separate solves per interval).
    OracleFlowMap<TestType> map(TestType{}, mixture());
    const Matrix<double> eps = noise(8, 23);
    const double scale = max_abs(eps);

    SECTION("one jump 0 → 1") {
        const Matrix<double> ref = map.flow(eps, 0.0, 1.0);
        Matrix<double> x = eps, work;
        map.calls = 0;
        const fmd::SolveStats stats = fmd::sample_flow_map(map, x, fmd::grid::uniform(1), work);
        const double err = max_abs(x - ref);
        INFO("max |jump − Dopri5| = " << err << ", max |X_1 − X_0| = " << max_abs(ref - eps));
        CHECK(err < 1e-12 * std::max(1.0, scale));
        CHECK(max_abs(ref - eps) > 0.1);  // the jump moves the points: not a vacuous match
        CHECK(stats.nfe == 1);
        CHECK(stats.steps == 1);
        CHECK(map.calls == 1);

        Matrix<double> y = eps;  // flow_map_jump is the same single jump
        fmd::flow_map_jump(map, y, 0.0, 1.0, work);
        CHECK(max_abs(y - ref) < 1e-12 * std::max(1.0, scale));
    }
    SECTION("four jumps compose to the same trajectory") {
        const std::vector<double> grid = fmd::grid::uniform(4);
        std::vector<Matrix<double>> ref, got;
        std::vector<double> ref_t, got_t;
        Matrix<double> y = eps;
        sol::Dopri5<double> ode({.rtol = ode_tol, .atol = ode_tol});
        ode.integrate(map.velocity_field(), y, grid, [&](double t, const Matrix<double>& s) { ref_t.push_back(t); ref.push_back(s); });

        Matrix<double> x = eps, work;
        map.calls = 0;
        const fmd::SolveStats stats = fmd::sample_flow_map(map, x, grid, work, [&](double t, const Matrix<double>& s) { got_t.push_back(t); got.push_back(s); });
        CHECK(stats.nfe == 4);
        CHECK(stats.steps == 4);
        CHECK(map.calls == 4);
        REQUIRE(got_t == grid);
        REQUIRE(ref_t == grid);
        double err = 0;
        for (std::size_t k = 0; k < grid.size(); ++k) err = std::max(err, max_abs(got[k] - ref[k]));
        INFO("max over grid times |4 jumps − Dopri5| = " << err);
        CHECK(err < 1e-9 * std::max(1.0, scale));
        CHECK(max_abs(got.back() - x) == 0.0);  // the observer saw the final state
    }
    SECTION("a velocity field as a flow map jumps by Euler steps") {
        // AsFlowMap: ū(x, t, r) = u_t(x), so the jumps are Euler's steps, far from the exact ones.
        auto u = map.velocity_field();
        fmd::AsFlowMap<decltype(u)> as_map(u);
        const std::vector<double> grid = fmd::grid::uniform(4);
        Matrix<double> x = eps, e = eps;
        fmd::sample_flow_map(as_map, x, grid);
        sol::Euler<double> euler;
        fmd::integrate(u, e, grid, euler);
        const double exact_gap = max_abs(x - map.flow(eps, 0.0, 1.0));
        INFO("max |jumps − Euler| = " << max_abs(x - e) << ", max |jumps − exact X_1| = " << exact_gap);
        CHECK(max_abs(x - e) <= 1e-14 * std::max(1.0, scale));
        CHECK(exact_gap > 1e-3);
    }
}

TEST_CASE("The oracle's consistency function is constant on trajectories, f(x, 1) = x (theory.md §9.3)", "[flowmap][oracle]") {
    // f(x, t) = X_1 through (x, t). On one Dopri5 trajectory every f(X_s, s) is its endpoint
    // (each f is a fresh solve from s, so agreement tests the flow property; measured 8e-12,
    // tolerance 1e-8).
    using Path = fmd::GaussianPath<sch::Linear>;
    OracleFlowMap<Path> map(Path{}, mixture());
    const Matrix<double> eps = noise(6, 37);
    const std::vector<double> times{0.0, 0.3, 0.7, 0.95, 1.0};
    std::vector<Matrix<double>> states;
    Matrix<double> y = eps;
    sol::Dopri5<double> ode({.rtol = ode_tol, .atol = ode_tol});
    ode.integrate(map.velocity_field(), y, times, [&](double, const Matrix<double>& s) { states.push_back(s); });
    REQUIRE(states.size() == times.size());
    const Matrix<double>& end = states.back();

    double err = 0;
    for (std::size_t k = 0; k < times.size(); ++k) err = std::max(err, max_abs(consistency(map, states[k], times[k]) - end));
    INFO("max |f(X_s, s) − X_1| over s in {0, 0.3, 0.7, 0.95, 1}: " << err);
    CHECK(err < 1e-8);

    // Negative control: the right state at the wrong time is not mapped to the endpoint.
    const double wrong_time = max_abs(consistency(map, states[1], 0.7) - end);
    INFO("max |f(X_0.3, 0.7) − X_1| = " << wrong_time);
    CHECK(wrong_time > 1e-3);

    // Boundary: f(x, 1) = x holds by the parametrization x + (1 − t)·ū (c_skip(1) = 1,
    // c_out(1) = 0) as long as u_1 is finite; the approach f(x, 1 − δ) − x = δ·u_1(x) + O(δ²) is
    // what the solver has to get right (measured ≈ 2.8·δ relative, bound 10·δ).
    const Matrix<double> x = noise(6, 41);
    CHECK(max_abs(consistency(map, x, 1.0) - x) == 0.0);
    const Matrix<double> u1 = map.velocity(x, 1.0);
    for (double delta : {1e-3, 1e-6}) {
        const Matrix<double> step = consistency(map, x, 1.0 - delta) - x;
        const double dev = max_abs(step - delta * u1) / (delta * max_abs(u1));
        INFO("delta = " << delta << ": |f(x, 1 − δ) − x − δ u_1(x)| / (δ max|u_1|) = " << dev);
        CHECK(dev < 10 * delta);
    }
}

TEST_CASE("The oracle's average velocity tends to the velocity as r → t (theory.md §9.4)", "[flowmap][oracle]") {
    // ū(x, t, t + δ) = u_t(x) + (δ/2)·d/dt u + O(δ²): within 1e-5 at δ = 1e-6, with the error
    // falling linearly in δ (so the limit is approached, not hard-wired). Measured ≤ 3.7e-6 at
    // δ = 1e-6, ratio to δ = 1e-3 ≈ 1000.
    using Path = fmd::GaussianPath<sch::Linear>;
    OracleFlowMap<Path> map(Path{}, mixture());
    const Matrix<double> eps = noise(8, 53);
    for (double t : {0.0, 0.4, 0.9}) {
        const Matrix<double> x = map.flow(eps, 0.0, t);
        const Matrix<double> u = map.velocity(x, t);
        const double near = max_abs(map.average(x, t, t + 1e-6) - u);
        const double far = max_abs(map.average(x, t, t + 1e-3) - u);
        INFO("t = " << t << ": max |ū(x, t, t + δ) − u_t(x)| = " << near << " (δ = 1e-6), " << far << " (δ = 1e-3)");
        CHECK(near < 1e-5);
        CHECK(far / near > 300.0);  // first order in δ: ratio ≈ 1000
        CHECK(far / near < 3000.0);
    }
}

}  // namespace flowmap_oracle_test

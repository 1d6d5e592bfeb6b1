// Numerical guards: conversions at singular points throw their documented error instead of
// returning ±inf / NaN coefficients; a sampler that reaches such a point stops with that error
// instead of ending all-Inf; manual steps reject h = 0, NaN, and (for forward-only methods)
// h < 0; uniform01 never returns 1; grids and networks whose sizes overflow are refused.
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using fmd::Prediction;
using fmd_test::names;
namespace schedule = fmd::schedule;

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double infinity = std::numeric_limits<double>::infinity();

/// A generator whose next output is fixed, to hit uniform01's extreme draws.
struct Fixed {
    using result_type = std::uint64_t;
    std::uint64_t value;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return ~result_type{0}; }
    result_type operator()() const { return value; }
};

}  // namespace

TEST_CASE("GaussianPath::conversion: infinite derivatives at the ends are singular points, not ±infinity", "[path][guards]") {
    // β̇ = −∞ at t = 1 (VP, Sqrt): ε → velocity divides nothing by zero but multiplies by β̇.
    const fmd::GaussianPath<schedule::VP> vp;
    const fmd::GaussianPath<schedule::Sqrt> sq;
    const fmd::GaussianPath<schedule::Polynomial> half(schedule::Polynomial(0.5));
    CHECK_THROWS_MATCHES(vp.conversion(Prediction::epsilon, Prediction::velocity, 1.0), fmd::invalid_argument, names("t", "singular point"));
    CHECK_THROWS_MATCHES(sq.conversion(Prediction::epsilon, Prediction::velocity, 1.0), fmd::invalid_argument, names("t", "singular point"));
    // α̇ = ∞ at t = 0 for Polynomial(0.5): x1 → velocity.
    CHECK_THROWS_MATCHES(half.conversion(Prediction::x1, Prediction::velocity, 0.0), fmd::invalid_argument, names("t", "singular point"));
    // Every conversion either throws or returns finite coefficients, at every time tried.
    auto finite_or_throws = [](const auto& path, double t, Prediction from, Prediction to) {
        try {
            const auto m = path.conversion(from, to, t);
            return std::isfinite(m.a) && std::isfinite(m.b);
        } catch (const fmd::invalid_argument&) {
            return true;
        }
    };
    for (const double t : {0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0})
        for (const auto from : {Prediction::velocity, Prediction::score, Prediction::epsilon, Prediction::x1})
            for (const auto to : {Prediction::velocity, Prediction::score, Prediction::epsilon, Prediction::x1}) {
                INFO("t " << t << " " << fmd::name(from) << " -> " << fmd::name(to));
                CHECK(finite_or_throws(vp, t, from, to));
                CHECK(finite_or_throws(sq, t, from, to));
                CHECK(finite_or_throws(half, t, from, to));
            }
    // Away from the ends the VP ε → velocity conversion is fine (control).
    CHECK(std::isfinite(vp.conversion(Prediction::epsilon, Prediction::velocity, 0.9).b));
}

TEST_CASE("A VP ε-model sampled with Heun / RK4 onto t = 1 stops with the conversion's error, not all-Inf", "[solver][guards]") {
    const fmd::GaussianPath<schedule::VP> vp;
    fmd::MixtureOracle oracle(vp, fmd_test::three_component_mixture());
    auto eps = [&](fmd::In<double> x, double t, fmd::Out<double> out) { oracle.epsilon(x, t, out); };
    auto u = fmd::reparameterize(vp, eps, Prediction::epsilon, Prediction::velocity);
    fmd::Rng rng(1);
    Matrix<double> x(2, 50);
    fmd::fill_normal(x, rng);
    fmd::solver::Heun<double> heun;
    fmd::solver::RK4<double> rk4;
    Matrix<double> y = x;
    CHECK_THROWS_MATCHES(fmd::sample(u, y, fmd::grid::uniform(10), heun), fmd::invalid_argument, names("t", "singular point"));
    y = x;
    CHECK_THROWS_MATCHES(fmd::sample(u, y, fmd::grid::uniform(10), rk4), fmd::invalid_argument, names("t", "singular point"));
    // Stopping short of t = 1 samples fine.
    y = x;
    fmd::sample(u, y, fmd::grid::uniform(10, 0.0, 0.999), heun);
    CHECK(y.allFinite());
}

TEST_CASE("step(): h = 0, h = NaN, t = NaN are errors; forward-only methods reject h < 0", "[solver][guards]") {
    Matrix<double> x = Matrix<double>::Ones(2, 3);
    auto u = [](fmd::In<double> xx, double, fmd::Out<double> out) { out = -xx; };
    auto check_all = [&](auto& stepper, const char* label) {
        INFO(label);
        CHECK_THROWS_MATCHES(stepper.step(u, fmd::Out<double>(x), 0.5, 0.0), fmd::invalid_argument, names("h", "non-zero"));
        CHECK_THROWS_MATCHES(stepper.step(u, fmd::Out<double>(x), 0.5, not_a_number), fmd::invalid_argument, names("h"));
        CHECK_THROWS_MATCHES(stepper.step(u, fmd::Out<double>(x), 0.5, infinity), fmd::invalid_argument, names("h"));
        CHECK_THROWS_MATCHES(stepper.step(u, fmd::Out<double>(x), not_a_number, 0.1), fmd::invalid_argument, names("t"));
    };
    fmd::solver::Euler<double> euler;
    fmd::solver::Midpoint<double> mid;
    fmd::solver::Heun<double> heun;
    fmd::solver::RK4<double> rk4;
    fmd::solver::AdamsBashforth<2, double> ab2;
    fmd::solver::AdamsBashforth<3, double> ab3;
    check_all(euler, "Euler");
    check_all(mid, "Midpoint");
    check_all(heun, "Heun");
    check_all(rk4, "RK4");
    check_all(ab2, "AB2");
    check_all(ab3, "AB3");
    CHECK(x == Matrix<double>::Ones(2, 3));  // nothing moved
    // AB2 with h = 0 used to produce −infinity: after the refusal a real solve is unaffected.
    x.setOnes();
    ab2.reset();
    ab2.step(u, fmd::Out<double>(x), 0.0, 0.1);
    CHECK(x.allFinite());

    fmd::Rng rng(3);
    fmd::solver::EulerMaruyama<double> em(fmd::ConstantSigma(0.5));
    x.setOnes();
    CHECK_THROWS_MATCHES(em.step(u, fmd::Out<double>(x), 0.5, -0.1, rng), fmd::invalid_argument, names("h", "only steps forward"));
    CHECK_THROWS_MATCHES(em.step(u, fmd::Out<double>(x), 0.5, 0.0, rng), fmd::invalid_argument, names("h"));
    CHECK_THROWS_MATCHES(em.step(u, fmd::Out<double>(x), not_a_number, 0.1, rng), fmd::invalid_argument, names("t"));
    CHECK(x == Matrix<double>::Ones(2, 3));

    fmd::solver::DpmSolver2M<fmd::GaussianPath<schedule::Linear>> dpm(fmd::GaussianPath<schedule::Linear>{});
    CHECK_THROWS_MATCHES(dpm.step(u, fmd::Out<double>(x), not_a_number, 0.1), fmd::invalid_argument, names("t", "finite"));
    CHECK_THROWS_MATCHES(dpm.step(u, fmd::Out<double>(x), 0.2, -0.1), fmd::invalid_argument, names("h"));
}

TEST_CASE("uniform01: the extreme draws stay strictly inside (0, 1)", "[core][guards]") {
    Fixed top{~std::uint64_t{0}}, bottom{0};
    const double hi = fmd::uniform01(top), lo = fmd::uniform01(bottom);
    CHECK(hi < 1.0);
    CHECK(hi == 1.0 - 0x1.0p-53);
    CHECK(lo > 0.0);
    CHECK(lo == 0x1.0p-54);
    // The draw just below the top is unchanged by the guard.
    Fixed next{(~std::uint64_t{0}) - (std::uint64_t{1} << 11)};
    CHECK(fmd::uniform01(next) == (static_cast<double>((std::uint64_t{1} << 53) - 2) + 0.5) * 0x1.0p-53);
}

TEST_CASE("Sizes that overflow are refused: huge grids, networks whose parameter count overflows", "[core][guards]") {
    CHECK_THROWS_MATCHES(fmd::grid::uniform(std::numeric_limits<long>::max()), fmd::invalid_argument, names("n", "grid::max_steps"));
    CHECK_THROWS_MATCHES(fmd::grid::cosine(fmd::grid::max_steps + 1), fmd::invalid_argument, names("n"));
    CHECK(fmd::grid::uniform(1000).size() == 1001);
    CHECK_THROWS_MATCHES(fmd::nn::MLP<float>({.dim = 2, .width = 3'000'000'000, .depth = 2}), fmd::invalid_argument, names("width", "parameters"));
    CHECK_THROWS_MATCHES(fmd::nn::MLP<float>::parameter_count({.dim = 2, .width = Eigen::Index(1) << 40, .depth = 1}), fmd::invalid_argument,
                         names("width"));
}

TEST_CASE("Adapters hold their path by value: a temporary path stays valid (AddressSanitizer build)", "[field][guards]") {
    using VP = fmd::GaussianPath<schedule::VP>;
    fmd::MixtureOracle oracle(VP{}, fmd_test::three_component_mixture());
    auto s = oracle.score_field();
    auto u = fmd::score_to_velocity(VP{}, s);  // the path argument dies at the end of this statement
    auto b = fmd::SdeDrift(VP{}, u, fmd::ConstantSigma(0.5));
    Matrix<double> x = Matrix<double>::Ones(2, 4), out(2, 4), exact(2, 4), drift(2, 4);
    u(fmd::In<double>(x), 0.6, fmd::Out<double>(out));
    oracle.velocity(x, 0.6, exact);
    CHECK((out - exact).cwiseAbs().maxCoeff() < 1e-12);
    b(fmd::In<double>(x), 0.6, fmd::Out<double>(drift));
    Matrix<double> score(2, 4);
    oracle.score(x, 0.6, score);
    CHECK((drift - (exact + 0.125 * score)).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("Exception types: invalid_argument, numerical_error and io_error are fmd::error, thrown where documented", "[core][guards]") {
    static_assert(std::is_base_of_v<fmd::error, fmd::invalid_argument> && std::is_base_of_v<fmd::error, fmd::numerical_error> &&
                  std::is_base_of_v<fmd::error, fmd::io_error> && std::is_base_of_v<std::runtime_error, fmd::error>);
    // A bad input.
    CHECK_THROWS_AS(fmd::grid::uniform(0), fmd::invalid_argument);
    CHECK_THROWS_AS(fmd::GaussianPath<schedule::Linear>{}.conversion(Prediction::velocity, Prediction::score, 1.5), fmd::invalid_argument);
    // A computation that went non-finite: the integrate observer that checks it.
    Matrix<double> x = Matrix<double>::Ones(2, 2);
    fmd::solver::Euler<double> euler;
    auto blow_up = [](fmd::In<double> y, double, fmd::Out<double> out) { out = y * 1e300; };
    CHECK_THROWS_AS(fmd::integrate(blow_up, x, fmd::grid::uniform(5), euler, fmd::CheckFinite{}), fmd::numerical_error);
    // A file that is not there, or not what it claims.
    CHECK_THROWS_AS(fmd::train::load_checkpoint<double>("/nonexistent/fmd.ckpt"), fmd::io_error);
    const std::vector<char> junk(40, 'x');
    CHECK_THROWS_AS(fmd::train::parse_checkpoint<double>(junk), fmd::io_error);
    // All of them are caught as fmd::error (and as std::exception).
    CHECK_THROWS_AS(fmd::train::parse_checkpoint<double>(junk), fmd::error);
    CHECK_THROWS_AS(fmd::grid::uniform(0), std::exception);
}

// Schedules (theory.md §4): derivatives against finite differences, exact boundary values,
// the VP-SDE's approximate boundary (§4.5), dual-number derivatives of custom schedules and
// argument checks of the constructors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <type_traits>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd_test::half_pi;

namespace sch = fmd::schedule;


// Interior times, away from the endpoint singularities of theory.md §4.2 (Polynomial n < 1
// at t = 0, Sqrt and VP at t = 1); the stencil below stays inside (0, 1).
constexpr std::array<double, 7> interior_times{0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95};

// Fourth-order central difference f'(t) ≈ (f(t−2h) − 8f(t−h) + 8f(t+h) − f(t+2h)) / (12h),
// with h = m/250, m = min(t, 1 − t). Error budget: truncation h⁴|f⁽⁵⁾|/30, rounding
// ≈ 18·ε·max|f|/(12h) ≈ 4e-14·max|f|/m ≤ 1e-12 here. The largest f⁽⁵⁾ are VP's α near the
// middle (|f⁽⁵⁾| ≈ (b/2)⁵α ≈ 1e3 at t = 0.5, h = 2e-3: ≈ 5e-10) and the endpoint power laws
// of theory.md §4.2 (Polynomial(0.5) near 0, Sqrt near 1: |f⁽⁵⁾| ≈ 3.3·m^−4.5, giving
// ≈ 3e-11 at m = 0.05). The tolerance 1e-7·max(1, |f'|) is ≥ 100x this budget, while a wrong
// derivative formula is off by O(1).
template <class F>
double central_difference(const F& f, double t) {
    const double h = 0.004 * std::min(t, 1.0 - t);
    return (f(t - 2 * h) - 8 * f(t - h) + 8 * f(t + h) - f(t + 2 * h)) / (12 * h);
}

constexpr double fd_tolerance = 1e-7;

template <class S>
void check_derivatives_by_finite_differences(const S& s, const std::string& name) {
    for (double t : interior_times) {
        INFO(name << " at t = " << t);
        const double fd_alpha = central_difference([&](double u) { return s.alpha(u); }, t);
        const double fd_beta = central_difference([&](double u) { return s.beta(u); }, t);
        const double da = s.d_alpha(t), db = s.d_beta(t);
        INFO("d_alpha = " << da << ", finite difference = " << fd_alpha);
        INFO("d_beta = " << db << ", finite difference = " << fd_beta);
        CHECK(std::abs(da - fd_alpha) <= fd_tolerance * std::max(1.0, std::abs(da)));
        CHECK(std::abs(db - fd_beta) <= fd_tolerance * std::max(1.0, std::abs(db)));
    }
}

// theory.md §3.2: α_0 = 0, β_0 = 1, α_1 = 1, β_1 = 0, bit-exact when the schedule says so.
template <class S>
void check_exact_boundaries(const S& s, const std::string& name) {
    STATIC_REQUIRE(sch::has_exact_boundaries<S>());
    INFO(name);
    CHECK(s.alpha(0.0) == 0.0);
    CHECK(s.beta(0.0) == 1.0);
    CHECK(s.alpha(1.0) == 1.0);
    CHECK(s.beta(1.0) == 0.0);
}

// The cosine schedule of theory.md §4.1 written by a user, derivatives by dual numbers.
auto custom_cosine() {
    return sch::custom([](auto t) { using std::sin; return sin(half_pi * t); },
                       [](auto t) { using std::cos; return cos(half_pi * t); });
}

// Song's VP-SDE (theory.md §4.5) with default β_min = 0.1, β_max = 20, written by a user.
auto custom_vp() {
    return sch::custom(
        [](auto t) {
            using std::exp;
            const auto s = 1.0 - t;
            return exp(-0.5 * (0.1 * s + 0.5 * (20.0 - 0.1) * s * s));
        },
        [](auto t) {
            using std::exp;
            using std::sqrt;
            const auto s = 1.0 - t;
            const auto a = exp(-0.5 * (0.1 * s + 0.5 * (20.0 - 0.1) * s * s));
            return sqrt(1.0 - a * a);
        });
}

// α = t², β = 1 − t² with their derivatives given (plain double lambdas: no dual numbers).
auto custom_explicit_quadratic() {
    return sch::custom([](double t) { return t * t; }, [](double t) { return 1.0 - t * t; },
                       [](double t) { return 2.0 * t; }, [](double t) { return -2.0 * t; });
}

}  // namespace

TEST_CASE("schedule derivatives match central finite differences at interior t", "[schedule]") {
    check_derivatives_by_finite_differences(sch::Linear{}, "Linear");
    check_derivatives_by_finite_differences(sch::Cosine{}, "Cosine");
    for (double n : {0.5, 1.0, 2.0, 3.0})
        check_derivatives_by_finite_differences(sch::Polynomial(n), "Polynomial(" + std::to_string(n) + ")");
    check_derivatives_by_finite_differences(sch::Sqrt{}, "Sqrt");
    check_derivatives_by_finite_differences(sch::VP{}, "VP()");
    check_derivatives_by_finite_differences(sch::VP(0.5, 5.0), "VP(0.5, 5)");
    check_derivatives_by_finite_differences(custom_cosine(), "custom cosine (dual numbers)");
    check_derivatives_by_finite_differences(custom_vp(), "custom VP (dual numbers)");
    check_derivatives_by_finite_differences(custom_explicit_quadratic(), "custom t^2 (explicit derivatives)");
}

TEST_CASE("schedules with exact boundaries hit α0=0, β0=1, α1=1, β1=0 exactly", "[schedule]") {
    check_exact_boundaries(sch::Linear{}, "Linear");
    check_exact_boundaries(sch::Cosine{}, "Cosine");  // β = sin(π(1−t)/2), theory.md §4.2
    for (double n : {0.5, 1.0, 2.0, 3.0, 0.1, 7.5})
        check_exact_boundaries(sch::Polynomial(n), "Polynomial(" + std::to_string(n) + ")");
    check_exact_boundaries(sch::Sqrt{}, "Sqrt");

    // The flag itself (theory.md §4.1, last column): VP and user schedules promise nothing.
    STATIC_REQUIRE_FALSE(sch::has_exact_boundaries<sch::VP>());
    STATIC_REQUIRE_FALSE(sch::has_exact_boundaries<decltype(custom_cosine())>());
    STATIC_REQUIRE_FALSE(sch::has_exact_boundaries<decltype(custom_explicit_quadratic())>());
}

TEMPLATE_TEST_CASE("α̇, β̇ give the D_t column of theory.md §4.1; α rises, β falls", "[schedule]",
                   sch::Linear, sch::Cosine, sch::Sqrt, sch::VP) {
    using S = TestType;
    const S s{};
    STATIC_REQUIRE(sch::Schedule<S>);
    for (double t : interior_times) {
        INFO("t = " << t);
        const double D = s.d_alpha(t) * s.beta(t) - s.alpha(t) * s.d_beta(t);
        double expected = 0.0;
        if constexpr (std::is_same_v<S, sch::Linear>) expected = 1.0;
        else if constexpr (std::is_same_v<S, sch::Cosine>) expected = half_pi;
        else if constexpr (std::is_same_v<S, sch::Sqrt>) expected = (2 - t) / (2 * std::sqrt(1 - t));
        else expected = 0.5 * s.b(t) * s.alpha(t) / s.beta(t);  // VP: ½ b(1−t) α/β
        CHECK(D == Approx(expected).epsilon(1e-14));
        CHECK(D > 0.0);
        CHECK(s.d_alpha(t) > 0.0);
        CHECK(s.d_beta(t) < 0.0);
        CHECK(s.alpha(t) < s.alpha(t + 0.01));
        CHECK(s.beta(t) > s.beta(t + 0.01));
    }
}

TEST_CASE("VP schedule: α_0 = exp(-(βmin+βmax)/4), α_1 = 1, β_1 = 0, α²+β² = 1", "[schedule]") {
    // theory.md §4.5: B(1) = (β_min + β_max)/2, so α_0 = e^{−B(1)/2}.
    const sch::VP vp;
    CHECK(vp.beta_min() == 0.1);
    CHECK(vp.beta_max() == 20.0);
    CHECK(vp.alpha(0.0) == Approx(std::exp(-(0.1 + 20.0) / 4)).epsilon(1e-14));
    CHECK(vp.alpha(0.0) == Approx(6.57e-3).epsilon(1e-3));           // theory.md §4.5: ≈ 6.57·10⁻³
    CHECK(1.0 - vp.beta(0.0) == Approx(2.16e-5).epsilon(1e-2));      // β_0 ≈ 1 − 2.2·10⁻⁵
    CHECK(vp.alpha(0.0) > 0.0);                                      // not an exact boundary
    CHECK(vp.alpha(1.0) == 1.0);
    CHECK(vp.beta(1.0) == 0.0);

    const sch::VP other(1.0, 3.0);
    CHECK(other.alpha(0.0) == Approx(std::exp(-1.0)).epsilon(1e-14));
    CHECK(other.b(1.0) == 1.0);  // Song's b(s) at s = 1 − t: b(0) = β_min ...
    CHECK(other.b(0.0) == 3.0);  // ... b(1) = β_max

    // Variance preserving: α² + β² = 1 (theory.md §4.1: β = √(1 − α²)).
    for (double t : {0.0, 0.01, 0.3, 0.5, 0.9, 0.999, 1.0}) {
        INFO("t = " << t);
        CHECK(vp.alpha(t) * vp.alpha(t) + vp.beta(t) * vp.beta(t) == Approx(1.0).epsilon(1e-15));
        // Table §4.1: α̇ = ½ b(1−t) α.
        CHECK(vp.d_alpha(t) == Approx(0.5 * vp.b(t) * vp.alpha(t)).epsilon(1e-15));
    }
    // Near t = 1 β is computed without cancellation (expm1): β_t² ≈ B(1 − t) for small 1 − t.
    // At 1 − t = 1e-12, 1 − exp(−B) would keep only ~4 correct digits.
    const double t_near = 1.0 - 1e-12, s = 1.0 - t_near;  // s exactly as the schedule sees it
    const double big_b = 0.1 * s + 0.5 * 19.9 * s * s;
    CHECK(vp.beta(t_near) == Approx(std::sqrt(big_b - big_b * big_b / 2)).epsilon(1e-9));
}

TEST_CASE("custom schedule: dual-number derivatives equal Cosine's closed forms", "[schedule][dual]") {
    const auto custom = custom_cosine();
    const sch::Cosine cosine;
    STATIC_REQUIRE(sch::Schedule<decltype(custom)>);
    // Including the endpoints: the closed forms are finite there. Values are ≤ π/2, so 1e-14
    // absolute is a few tens of ulps; dual numbers are exact up to rounding of sin and cos.
    for (int i = 0; i <= 40; ++i) {
        const double t = i / 40.0;
        INFO("t = " << t);
        CHECK(std::abs(custom.alpha(t) - cosine.alpha(t)) <= 1e-15);
        CHECK(std::abs(custom.beta(t) - cosine.beta(t)) <= 1e-15);
        CHECK(std::abs(custom.d_alpha(t) - cosine.d_alpha(t)) <= 1e-14);
        CHECK(std::abs(custom.d_beta(t) - cosine.d_beta(t)) <= 1e-14);
        // and the table of theory.md §4.1 directly
        CHECK(std::abs(custom.d_alpha(t) - half_pi * std::cos(half_pi * t)) <= 1e-14);
        CHECK(std::abs(custom.d_beta(t) + half_pi * std::sin(half_pi * t)) <= 1e-14);
    }
}

TEST_CASE("custom schedule: dual-number VP equals the built-in VP", "[schedule][dual]") {
    const auto custom = custom_vp();
    const sch::VP vp;
    for (double t : interior_times) {
        INFO("t = " << t);
        CHECK(custom.alpha(t) == Approx(vp.alpha(t)).epsilon(1e-13));
        CHECK(custom.beta(t) == Approx(vp.beta(t)).epsilon(1e-12));
        CHECK(custom.d_alpha(t) == Approx(vp.d_alpha(t)).epsilon(1e-13));
        CHECK(custom.d_beta(t) == Approx(vp.d_beta(t)).epsilon(1e-11));
    }
}

TEST_CASE("custom schedule: dual numbers differentiate every elementary function", "[schedule][dual]") {
    // Not a valid path (no boundary conditions), but Schedule only asks for α, β and derivatives:
    // each function of fmd/core/dual.hpp that is reachable by unqualified lookup.
    const auto s = sch::custom(
        [](auto t) {
            using std::atan;
            using std::log;
            using std::pow;
            using std::tan;
            using std::tanh;
            return tanh(2.0 * t) + log(1.0 + t * t) - atan(3.0 * t) / (1.0 + t) + pow(t + 0.5, 2.5) + tan(0.7 * t);
        },
        [](auto t) {
            using std::cos;
            using std::exp;
            using std::sqrt;
            auto y = exp(-t) * cos(2.0 * t) - sqrt(1.5 - t);
            y += t;
            y *= 2.0;
            y -= t;
            y /= (2.0 + t);
            return -y;
        });
    check_derivatives_by_finite_differences(s, "custom with tanh, log, atan, pow, tan, exp, cos, sqrt");
}

TEST_CASE("custom schedule with explicit derivatives uses them instead of dual numbers", "[schedule]") {
    const auto quadratic = custom_explicit_quadratic();
    for (double t : {0.0, 0.25, 1.0}) {
        CHECK(quadratic.alpha(t) == t * t);
        CHECK(quadratic.d_alpha(t) == 2.0 * t);
        CHECK(quadratic.d_beta(t) == -2.0 * t);
    }
    // Deliberately inconsistent derivatives prove that the given callables are what is returned.
    const auto marked = sch::custom([](double t) { return t; }, [](double t) { return 1.0 - t; },
                                    [](double) { return 42.0; }, [](double) { return -7.0; });
    CHECK(marked.d_alpha(0.5) == 42.0);
    CHECK(marked.d_beta(0.5) == -7.0);
}

TEST_CASE("Polynomial and VP constructors reject bad arguments, naming them", "[schedule][errors]") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    for (double n : {0.0, -1.0, -0.5, nan, inf}) {
        INFO("n = " << n);
        CHECK_THROWS_AS(sch::Polynomial(n), fmd::error);
        CHECK_THROWS_WITH(sch::Polynomial(n), Catch::Contains("argument 'n'"));
    }
    CHECK_NOTHROW(sch::Polynomial(1e-3));
    CHECK(sch::Polynomial(2.5).exponent() == 2.5);

    for (double bmin : {0.0, -0.1, nan}) {
        INFO("beta_min = " << bmin);
        CHECK_THROWS_AS(sch::VP(bmin, 20.0), fmd::error);
        CHECK_THROWS_WITH(sch::VP(bmin, 20.0), Catch::Contains("argument 'beta_min'"));
    }
    for (double bmax : {0.05, -1.0, nan}) {
        INFO("beta_max = " << bmax);
        CHECK_THROWS_AS(sch::VP(0.1, bmax), fmd::error);
        CHECK_THROWS_WITH(sch::VP(0.1, bmax), Catch::Contains("argument 'beta_max'"));
    }
    CHECK_NOTHROW(sch::VP(0.1, 0.1));  // β_max = β_min: constant b, still a valid schedule
}

// VP must reject β_max = +∞ (every α̇, β̇ at t < 1 would be NaN), as Polynomial rejects a
// non-finite n.
TEST_CASE("VP constructor rejects an infinite beta_max", "[schedule][errors]") {
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(sch::VP(0.1, inf), Catch::Contains("argument 'beta_max'"));
    CHECK_THROWS_WITH(sch::VP(inf, inf), Catch::Contains("argument 'beta_"));
}

// Time grids (theory.md §7.1): cosine spacing, log-SNR-uniform and EDM ρ-grids through a
// schedule's λ_t = log(α_t/β_t), checked against closed forms and the Karras formula; argument
// checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

namespace sch = fmd::schedule;

using fmd_test::names;

void check_increasing(const std::vector<double>& g) {
    for (std::size_t k = 1; k < g.size(); ++k) REQUIRE(g[k] > g[k - 1]);
    REQUIRE(g.front() >= 0.0);
    REQUIRE(g.back() <= 1.0);
}

template <class Sched>
double lam(const Sched& s, double t) {
    return std::log(s.alpha(t)) - std::log(s.beta(t));
}

// A user schedule (derivatives by dual numbers) with λ = log(t²/(1 − t)) increasing.
auto user_schedule() {
    return sch::custom([](auto t) { return t * t; }, [](auto t) { return 1.0 - t; });
}

}  // namespace

TEST_CASE("Cosine grid: endpoints, symmetry, clustering at both ends", "[solver][grid]") {
    for (long n : {1L, 2L, 7L, 100L}) {
        const auto g = fmd::grid::cosine(n, 0.1, 0.9);
        REQUIRE(g.size() == static_cast<std::size_t>(n) + 1);
        CHECK(g.front() == 0.1);
        CHECK(g.back() == 0.9);
        check_increasing(g);
        // Symmetric about the midpoint: t_k − t0 = t1 − t_{n−k}.
        for (long k = 0; k <= n; ++k)
            CHECK(g[static_cast<std::size_t>(k)] - 0.1 == Approx(0.9 - g[static_cast<std::size_t>(n - k)]).margin(1e-15));
    }
    const long n = 100;
    const auto g = fmd::grid::cosine(n);
    // End steps ≈ π²/(4n²), middle step ≈ π/(2n) (Taylor of (1 − cos(πk/n))/2).
    const double end_step = std::numbers::pi * std::numbers::pi / (4.0 * n * n);
    CHECK(g[1] - g[0] == Approx(end_step).epsilon(1e-3));
    CHECK(g[n] - g[n - 1] == Approx(end_step).epsilon(1e-3));
    CHECK(g[n / 2 + 1] - g[n / 2] == Approx(std::numbers::pi / (2.0 * n)).epsilon(1e-3));
    // Steps grow monotonically towards the middle.
    for (long k = 1; k < n / 2; ++k) CHECK(g[k + 1] - g[k] > g[k] - g[k - 1]);
}

TEST_CASE("Log-SNR grid has equal steps in lambda for built-in and user schedules", "[solver][grid]") {
    const long n = 40;
    auto check = [n](const auto& sched, double t0, double t1, const char* what) {
        INFO(what);
        const auto g = fmd::grid::log_snr(sched, n, t0, t1);
        REQUIRE(g.size() == static_cast<std::size_t>(n) + 1);
        CHECK(g.front() == t0);
        CHECK(g.back() == t1);
        check_increasing(g);
        const double dl = (lam(sched, t1) - lam(sched, t0)) / n;
        for (std::size_t k = 1; k < g.size(); ++k) CHECK(lam(sched, g[k]) - lam(sched, g[k - 1]) == Approx(dl).epsilon(1e-9));
    };
    check(sch::Linear{}, 1e-3, 1 - 1e-3, "linear");
    check(sch::Cosine{}, 0.01, 0.995, "cosine");
    check(sch::VP{}, 0.0, 0.999, "VP (alpha_0 > 0: t0 = 0 allowed)");
    check(sch::Sqrt{}, 0.05, 0.95, "sqrt");
    check(user_schedule(), 0.02, 0.98, "user schedule, derivatives by dual numbers");
    // A GaussianPath works like its schedule.
    CHECK(fmd::grid::log_snr(fmd::GaussianPath<sch::Cosine>{}, n, 0.01, 0.995) == fmd::grid::log_snr(sch::Cosine{}, n, 0.01, 0.995));

    // Closed form for the linear schedule: λ = logit(t), so t_k = sigmoid(λ_k) — an independent
    // check of the bisection (to a few ulps).
    const double t0 = 0.02, t1 = 0.97;
    const auto g = fmd::grid::log_snr(sch::Linear{}, n, t0, t1);
    const double l0 = std::log(t0 / (1 - t0)), l1 = std::log(t1 / (1 - t1));
    for (long k = 0; k <= n; ++k) {
        const double lk = l0 + (l1 - l0) * static_cast<double>(k) / n;
        CHECK(g[static_cast<std::size_t>(k)] == Approx(1.0 / (1.0 + std::exp(-lk))).epsilon(1e-14));
    }
}

TEST_CASE("EDM grid reproduces the Karras sigmas in this library's time", "[solver][grid]") {
    const long n = 18;
    const double smin = 0.002, smax = 80.0, rho = 7.0;
    auto karras = [&](long i) {
        const double a = std::pow(smax, 1 / rho), b = std::pow(smin, 1 / rho);
        return std::pow(a + static_cast<double>(i) / static_cast<double>(n - 1) * (b - a), rho);
    };
    auto check = [&](const auto& sched, const char* what) {
        INFO(what);
        const auto g = fmd::grid::edm(sched, n);
        REQUIRE(g.size() == static_cast<std::size_t>(n) + 1);
        check_increasing(g);
        CHECK(g.back() == 1.0);  // Karras's appended σ = 0
        for (long i = 0; i < n; ++i) {
            const double t = g[static_cast<std::size_t>(i)];
            CHECK(sched.beta(t) / sched.alpha(t) == Approx(karras(i)).epsilon(1e-9));
        }
    };
    check(sch::Linear{}, "linear");
    check(sch::Cosine{}, "cosine");
    check(sch::VP{}, "VP (largest sigma = beta_0/alpha_0 = 152)");
    check(user_schedule(), "user schedule");
    // Linear: (1 − t)/t = σ ⇒ t = 1/(1 + σ); the first point is 1/81, not 0.
    const auto g = fmd::grid::edm(sch::Linear{}, n);
    CHECK(g.front() == Approx(1.0 / 81.0).epsilon(1e-14));
    for (long i = 0; i < n; ++i) CHECK(g[static_cast<std::size_t>(i)] == Approx(1.0 / (1.0 + karras(i))).epsilon(1e-13));
    // ρ = 1 spaces σ itself uniformly; a single step is {t(σ_max), 1}.
    const auto g1 = fmd::grid::edm(sch::Linear{}, 5, {.sigma_min = 1.0, .sigma_max = 9.0, .rho = 1.0});
    for (int i = 0; i < 5; ++i) CHECK((1 - g1[static_cast<std::size_t>(i)]) / g1[static_cast<std::size_t>(i)] == Approx(9.0 - 2.0 * i).epsilon(1e-12));
    const auto one = fmd::grid::edm(sch::Linear{}, 1);
    REQUIRE(one.size() == 2);
    CHECK(one[0] == Approx(1.0 / 81.0));
    CHECK(one[1] == 1.0);
}

TEST_CASE("Grids reject bad arguments naming them", "[solver][grid][errors]") {
    CHECK_THROWS_MATCHES(fmd::grid::cosine(0), fmd::error, names("n"));
    CHECK_THROWS_MATCHES(fmd::grid::cosine(5, 0.5, 0.2), fmd::error, names("t1"));
    CHECK_THROWS_MATCHES(fmd::grid::cosine(5, -0.1, 1.0), fmd::error, names("t0"));
    CHECK_THROWS_MATCHES(fmd::grid::cosine(5, 0.0, 1.5), fmd::error, names("t1"));

    const sch::Linear lin;
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(lin, 0, 0.1, 0.9), fmd::error, names("n"));
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(lin, 10, 0.0, 0.9), fmd::error, names("t0"));  // α_0 = 0: λ = −∞
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(lin, 10, 0.1, 1.0), fmd::error, names("t1"));  // β_1 = 0: λ = +∞
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(lin, 10, 0.6, 0.4), fmd::error, names("t1"));
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(lin, 10, 0.1, 1.1), fmd::error, names("t1"));
    // λ decreasing (data and noise swapped): the schedule is named.
    const auto reversed = sch::custom([](auto t) { return 1.0 - t; }, [](auto t) { return t; });
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(reversed, 10, 0.1, 0.9), fmd::error, names("path"));
    // So many points that neighbours coincide in double.
    CHECK_THROWS_MATCHES(fmd::grid::log_snr(lin, 1000, 0.5, 0.5 + 1e-14), fmd::error, names("n"));

    CHECK_THROWS_MATCHES(fmd::grid::edm(lin, 0), fmd::error, names("n"));
    CHECK_THROWS_MATCHES(fmd::grid::edm(lin, 10, {.sigma_min = 0.0}), fmd::error, names("sigma_min"));
    CHECK_THROWS_MATCHES(fmd::grid::edm(lin, 10, {.sigma_min = 1.0, .sigma_max = 0.5}), fmd::error, names("sigma_max"));
    CHECK_THROWS_MATCHES(fmd::grid::edm(lin, 10, {.rho = 0.0}), fmd::error, names("rho"));
    CHECK_THROWS_MATCHES(fmd::grid::edm(lin, 10, {.rho = std::nan("")}), fmd::error, names("rho"));
    // VP's β/α at t = 0 is ≈ 152: σ_max = 500 has no time.
    CHECK_THROWS_MATCHES(fmd::grid::edm(sch::VP{}, 10, {.sigma_max = 500.0}), fmd::error, names("sigma_max"));
    // β_1 = 0.01 (σ_min-style OT path): β/α never falls to 0.002.
    const auto blurred = sch::custom([](auto t) { return t; }, [](auto t) { return 1.0 - 0.99 * t; });
    CHECK_THROWS_MATCHES(fmd::grid::edm(blurred, 10), fmd::error, names("sigma_min"));
    CHECK_NOTHROW(fmd::grid::edm(blurred, 10, {.sigma_min = 0.02}));
}

// Solvers (theory.md §2, §7): measured convergence orders of the ODE steppers, Euler–Maruyama
// moments on Ornstein–Uhlenbeck, distributional correctness of the ODE and SDE samplers on a
// Gaussian-mixture oracle, reproducibility, NFE accounting, observers, argument checks and
// the stepper/field concepts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

namespace sch = fmd::schedule;
namespace sol = fmd::solver;
using fmd::Matrix;
using fmd::Vector;

using fmd_test::fitted_order;
using fmd_test::names;
using fmd_test::three_component_mixture;

// ---------------------------------------------------------------------------------------------
// Convergence orders

template <class St, class F>
Matrix<double> solve(F& u, const Matrix<double>& x0, long n) {
    St stepper;
    Matrix<double> x = x0;
    fmd::integrate(u, x, fmd::grid::uniform(n), stepper);
    return x;
}

/// RMS over columns of the final-state error ‖X_n − X_ref‖ for each step count, and its order.
template <class St, class F>
double measure_order(const std::string& problem, F& u, const Matrix<double>& x0, const Matrix<double>& reference,
                     const std::vector<long>& ns, double expected) {
    std::vector<double> errors;
    std::ostringstream table;
    table << std::scientific << std::setprecision(3);
    for (long n : ns) {
        errors.push_back((solve<St>(u, x0, n) - reference).norm() / std::sqrt(static_cast<double>(x0.cols())));
        table << " n=" << n << ": " << errors.back() << ";";
    }
    const double order = fitted_order(ns, errors);
    WARN(problem << ": measured order " << std::fixed << std::setprecision(3) << order << " (expected " << expected
                 << "); RMS errors" << table.str());
    CHECK(order == Approx(expected).margin(0.25));
    return order;
}

// ---------------------------------------------------------------------------------------------
// Sliced Wasserstein-2 between equal-size 2-D sample sets: for each direction θ project both
// sets, sort, and average the squared differences of order statistics (the exact 1-D W2² of
// two n-point empirical measures); SW2 = sqrt(mean over directions).

std::vector<Vector<double>> directions(int count, std::uint64_t seed) {
    fmd::Rng rng(seed);
    std::vector<Vector<double>> dirs;
    for (int p = 0; p < count; ++p) {
        const double a = 2 * std::numbers::pi * fmd::uniform01(rng);
        Vector<double> v(2);
        v << std::cos(a), std::sin(a);
        dirs.push_back(v);
    }
    return dirs;
}

double sliced_w2_squared(const Matrix<double>& a, const Matrix<double>& b, const std::vector<Vector<double>>& dirs) {
    REQUIRE(a.cols() == b.cols());
    std::vector<double> pa(static_cast<std::size_t>(a.cols())), pb(pa.size());
    double total = 0;
    for (const auto& v : dirs) {
        for (Eigen::Index j = 0; j < a.cols(); ++j) {
            pa[static_cast<std::size_t>(j)] = v.dot(a.col(j));
            pb[static_cast<std::size_t>(j)] = v.dot(b.col(j));
        }
        std::sort(pa.begin(), pa.end());
        std::sort(pb.begin(), pb.end());
        double sq = 0;
        for (std::size_t j = 0; j < pa.size(); ++j) sq += (pa[j] - pb[j]) * (pa[j] - pb[j]);
        total += sq / static_cast<double>(pa.size());
    }
    return total / static_cast<double>(dirs.size());
}

}  // namespace

// =============================================================================================
// Convergence orders (theory.md §7.2, §7.3)

TEST_CASE("ODE steppers reach their orders on a Gaussian-mixture oracle", "[solver][order]") {
    // ring(8, 3, 0.5) under the linear schedule; reference: RK4 with 4096 steps (differs from
    // RK4-8192 by 2e-13, three orders below the smallest RK4 error measured here, ≈ 4e-10 at
    // n = 256). n = 32…256 is in the asymptotic regime for every stepper (successive error
    // ratios within 3% of 2^p); at n = 8…16 midpoint and Heun are pre-asymptotic (ratios ≈ 3.7).
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, fmd::GaussianMixture<double>::ring(8, 3.0, 0.5));
    auto u = oracle.velocity_field();
    const Matrix<double> x0 = fmd_test::normal_batch(64, 11);
    const Matrix<double> reference = fmd_test::rk4_reference(path, x0);
    const std::vector<long> ns{32, 64, 128, 256};
    measure_order<sol::Euler<double>>("ring mixture, Euler", u, x0, reference, ns, 1.0);
    measure_order<sol::Midpoint<double>>("ring mixture, Midpoint", u, x0, reference, ns, 2.0);
    measure_order<sol::Heun<double>>("ring mixture, Heun", u, x0, reference, ns, 2.0);
    measure_order<sol::RK4<double>>("ring mixture, RK4", u, x0, reference, ns, 4.0);
}

TEST_CASE("ODE steppers reach their orders on the exact affine flow of a single Gaussian", "[solver][order]") {
    // theory.md §8.2: for data N(μ, s² I) and any schedule with α_0 = 0, β_0 = 1, α_1 = 1,
    // β_1 = 0, ψ_1(x_0) = μ + s·x_0 exactly — no reference solve needed.
    //
    // Midpoint superconverges here under the linear schedule. Along the flow y = x − α_t μ obeys
    // y' = c(t) y with c = ½V̇/V, and the midpoint rule's h² global-error coefficient is
    // y(1)·∫_0^1 (c''/24 + c³/6 + c c'/4) dt, which vanishes identically for
    // V = t²s² + (1−t)² (checked with mpmath to 1e-38 for s = 0.3, 0.6, 1.5): the measured order
    // is 3, not 2 (theory.md §7.3's "falls by ≈ 2^p" holds with p = 3). Under the cosine schedule
    // the coefficient does not vanish and midpoint shows its nominal order 2. s = 1.5 puts RK4
    // in its asymptotic range for n = 16…128 under both schedules.
    Matrix<double> mu(2, 1);
    mu << 1.0, -0.5;
    const double s = 1.5;
    const fmd::GaussianMixture<double> gauss(mu, Vector<double>::Constant(1, s), Vector<double>::Ones(1));
    const Matrix<double> x0 = fmd_test::normal_batch(200, 12);
    const Matrix<double> exact = mu.replicate(1, x0.cols()) + s * x0;
    const std::vector<long> ns{16, 32, 64, 128};
    {
        fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, gauss);
        auto u = oracle.velocity_field();
        measure_order<sol::Euler<double>>("Gaussian linear, Euler", u, x0, exact, ns, 1.0);
        measure_order<sol::Midpoint<double>>("Gaussian linear, Midpoint (superconvergent, see comment)", u, x0, exact, ns, 3.0);
        measure_order<sol::Heun<double>>("Gaussian linear, Heun", u, x0, exact, ns, 2.0);
        measure_order<sol::RK4<double>>("Gaussian linear, RK4", u, x0, exact, ns, 4.0);
    }
    {
        fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Cosine>{}, gauss);
        auto u = oracle.velocity_field();
        measure_order<sol::Euler<double>>("Gaussian cosine, Euler", u, x0, exact, ns, 1.0);
        measure_order<sol::Midpoint<double>>("Gaussian cosine, Midpoint", u, x0, exact, ns, 2.0);
        measure_order<sol::Heun<double>>("Gaussian cosine, Heun", u, x0, exact, ns, 2.0);
        measure_order<sol::RK4<double>>("Gaussian cosine, RK4", u, x0, exact, ns, 4.0);
    }
    // The solve is accurate, not only convergent: RK4 with 128 steps is within 1e-8 of ψ_1.
    fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, gauss);
    auto u = oracle.velocity_field();
    CHECK((solve<sol::RK4<double>>(u, x0, 128) - exact).cwiseAbs().maxCoeff() < 1e-8);
}

// =============================================================================================
// Euler–Maruyama on Ornstein–Uhlenbeck (theory.md §2.4, §2.5)

TEST_CASE("Euler-Maruyama reproduces the exact EM moments of Ornstein-Uhlenbeck", "[solver][sde]") {
    // dX = −θX dt + σ dW from X_0 = x0 (deterministic). The EM chain is linear with Gaussian
    // noise, so X_k is exactly Gaussian with
    //   mean_k = (1 − θh)^k x0,   var_{k+1} = (1 − θh)² var_k + σ² h,   var_0 = 0,
    // and stationary variance σ²/(θ(2 − θh)) (theory.md §2.5).
    // θ = 8, h = 1/40 (θh = 0.2), σ = 0.8, n = 20000 independent 1-D columns.
    //
    // Tolerance: 5 standard errors. For a Gaussian sample the standard error of the mean is
    // √(var/n) and of the sample variance var·√(2/(n−1)) (1% of var here). |Z| > 5 has
    // probability 5.7e-7, and a union bound over the 14 checks below gives a false-failure
    // probability < 1e-5 for a random seed (the seed is fixed, so the outcome is reproducible).
    // Power: the exact OU scheme would give e^{−θt}x0 and σ²/(2θ), which differ from EM by
    // 60 standard errors (mean, k = 5) and 10 standard errors (stationary variance): the
    // checks below distinguish EM from the continuous process, and we assert that they do.
    const double theta = 8.0, sigma = 0.8, x0 = 2.0;
    const long steps = 40;
    const double h = 1.0 / static_cast<double>(steps);
    const Eigen::Index n = 20000;
    auto drift = [theta](fmd::In<double> x, double, fmd::Out<double> out) { out = -theta * x; };
    Matrix<double> x = Matrix<double>::Constant(1, n, x0);
    sol::EulerMaruyama<double> em{fmd::ConstantSigma(sigma)};
    fmd::TrajectoryRecorder<double> recorder(n);
    fmd::Rng rng(2024);
    const auto grid = fmd::grid::uniform(steps);
    const auto stats = fmd::integrate(drift, x, grid, em, rng, recorder);
    REQUIRE(stats.steps == steps);
    REQUIRE(recorder.states.size() == grid.size());

    std::vector<double> mean(steps + 1), var(steps + 1);
    mean[0] = x0;
    var[0] = 0;
    for (long k = 0; k < steps; ++k) {
        mean[static_cast<std::size_t>(k + 1)] = (1 - theta * h) * mean[static_cast<std::size_t>(k)];
        var[static_cast<std::size_t>(k + 1)] = (1 - theta * h) * (1 - theta * h) * var[static_cast<std::size_t>(k)] + sigma * sigma * h;
    }
    const double nd = static_cast<double>(n);
    for (long k : {1L, 2L, 5L, 10L, 20L, 30L, 40L}) {
        const auto& xk = recorder.states[static_cast<std::size_t>(k)];
        const double m = xk.mean();
        const double v = (xk.array() - m).square().sum() / (nd - 1);
        const double se_mean = std::sqrt(var[static_cast<std::size_t>(k)] / nd);
        const double se_var = var[static_cast<std::size_t>(k)] * std::sqrt(2.0 / (nd - 1));
        INFO("k = " << k << ": sample mean " << m << " vs " << mean[static_cast<std::size_t>(k)] << " (SE " << se_mean
                    << "), sample variance " << v << " vs " << var[static_cast<std::size_t>(k)] << " (SE " << se_var << ")");
        CHECK(std::abs(m - mean[static_cast<std::size_t>(k)]) <= 5 * se_mean);
        CHECK(std::abs(v - var[static_cast<std::size_t>(k)]) <= 5 * se_var);
    }
    // The closed forms of theory.md §2.5 agree with the recursion.
    CHECK(mean[5] == Approx(std::pow(1 - theta * h, 5) * x0).epsilon(1e-14));
    const double em_stationary = sigma * sigma / (theta * (2 - theta * h));
    CHECK(var[40] == Approx(em_stationary).epsilon(1e-6));  // (1 − θh)^80 ≈ 2e-8 from the fixed point

    const auto& x5 = recorder.states[5];
    const auto& last = recorder.states.back();
    const double v_last = (last.array() - last.mean()).square().sum() / (nd - 1);
    const double se_stationary = em_stationary * std::sqrt(2.0 / (nd - 1));
    WARN("OU Euler-Maruyama: stationary variance " << v_last << ", EM theory " << em_stationary << ", exact OU "
                                                    << sigma * sigma / (2 * theta) << ", 5 SE = " << 5 * se_stationary);
    CHECK(std::abs(v_last - em_stationary) <= 5 * se_stationary);
    // Power: EM's moments are distinguishable from the continuous OU process (theory.md §2.5).
    CHECK(std::abs(v_last - sigma * sigma / (2 * theta)) > 5 * se_stationary);
    CHECK(std::abs(x5.mean() - std::exp(-theta * 5 * h) * x0) > 5 * std::sqrt(var[5] / nd));
    // Recorded times are the grid.
    CHECK(recorder.times == grid);
}

TEST_CASE("Euler-Maruyama with sigma = 0 is the Euler method", "[solver][sde]") {
    // theory.md §2.4: σ ≡ 0 gives §2.2; no random numbers are consumed.
    fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, three_component_mixture());
    auto u = oracle.velocity_field();
    fmd::Rng rng(3), untouched(3);
    Matrix<double> x(2, 50);
    fmd::fill_normal(x, rng);
    Matrix<double> y = x;
    sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.0)};
    sol::Euler<double> euler;
    fmd::Rng sde_rng(99);
    fmd::integrate(u, x, fmd::grid::uniform(20), em, sde_rng);
    fmd::integrate(u, y, fmd::grid::uniform(20), euler);
    CHECK(x == y);
    fmd::Rng fresh(99);
    CHECK(sde_rng() == fresh());
}

// =============================================================================================
// Distributional correctness (theory.md §3.5–§3.7, §7.6)

TEST_CASE("ODE and SDE samplers reproduce the mixture (sliced Wasserstein-2)", "[solver][distribution]") {
    // From X_0 ~ N(0, I) the ODE with the exact velocity (theory.md §3.5) and the SDE with drift
    // u + σ²/2·s (theory.md §3.7; SdeDrift converts u to s, theory.md §7.6) both end at
    // p_data = the 3-component mixture (the SDE at t = 0.999, where p_t ≈ p_data).
    //
    // Statistic: SW2² with 64 fixed random directions, between batches of 2000 samples.
    // Its sampling noise is dominated by the multinomial component counts (a 1% shift of mass
    // between modes ~3 apart), so a single SW2 value fluctuates by a factor of ~3 from seed to
    // seed (0.05–0.16 over 12 seeds; SW2² behaves like a χ² with ≈ 3.4 degrees of freedom).
    // The naive rule "one generated-vs-true distance ≤ 2× one true-vs-true distance" fails for
    // 34 of 400 seeds even when the "generated" samples are exact draws (measured). So we average:
    //   floor²     = mean of SW2² over 16 pairs of independent true batches,
    //   statistic² = mean of SW2² over 4 generated batches, each against its own fresh true batch.
    // Pass: statistic ≤ 2·floor. With exact draws in place of generated ones, this protocol was
    // run for 1600 seeds: median ratio 0.97, 99th percentile 1.52, maximum 1.92, no failure
    // (≈ F(14, 54) for ratio², whose tail beyond 4 is ~1e-4). Discretization bias b adds b² to
    // statistic² (Heun with 100 steps and EM with 500 steps: b ≪ floor; Euler with 5 steps
    // already reaches ≈ 3× floor). Controls: pure noise (no integration) and the seed's SDE
    // drift u + 2σ² s (theory.md §10.2) must exceed the threshold by a wide margin, so the
    // test can fail.
    const auto mix = three_component_mixture();
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, mix);
    auto u = oracle.velocity_field();
    auto s = oracle.score_field();
    const auto dirs = directions(64, 5);
    const Eigen::Index batch = 2000;
    const int batches = 4;
    fmd_test::MixtureMatch match(mix, batch, 77, [&dirs](const Matrix<double>& a, const Matrix<double>& b) { return sliced_w2_squared(a, b, dirs); });
    const double floor = match.floor();
    const double threshold = 2.0 * floor;
    const Matrix<double> x0 = fmd_test::normal_batch(batch * batches, 31);
    const auto sde_grid = fmd::grid::uniform(500, 0.0, 0.999);

    const double noise = match.statistic(x0);

    Matrix<double> x_ode = x0;
    sol::Heun<double> heun;
    fmd::integrate(u, x_ode, fmd::grid::uniform(100), heun);
    const double ode = match.statistic(x_ode);

    Matrix<double> x_rk4 = x0;
    sol::RK4<double> rk4;
    fmd::sample(u, x_rk4, fmd::grid::uniform(50), rk4);
    const double ode_rk4 = match.statistic(x_rk4);

    double sde[2];
    const double sigmas[2] = {0.5, 1.0};
    for (int i = 0; i < 2; ++i) {
        Matrix<double> x = x0;
        sol::EulerMaruyama<double> em{fmd::ConstantSigma(sigmas[i])};
        fmd::Rng rng(1000 + static_cast<std::uint64_t>(i));
        fmd::sample(path, u, x, sde_grid, em, rng);
        sde[i] = match.statistic(x);
    }

    // SdeDriftFromScore (u and s from separate fields, two NFE) with the same noise as the
    // SdeDrift sampler above (same seed, same start): drifts agree to rounding, so the paths
    // must agree pathwise — stronger than a second distribution test, and cheaper.
    double path_gap = 0;
    {
        const Eigen::Index m = 500;
        Matrix<double> a = x0.leftCols(m), b = a;
        sol::EulerMaruyama<double> em{fmd::ConstantSigma(1.0)};
        fmd::SdeDriftFromScore<double, decltype(u), decltype(s), fmd::ConstantSigma> drift(u, s, fmd::ConstantSigma(1.0));
        fmd::Rng ra(2000), rb(2000);
        fmd::sample(path, u, a, sde_grid, em, ra);
        fmd::integrate(drift, b, sde_grid, em, rb);
        path_gap = (a - b).cwiseAbs().maxCoeff();
        CHECK(a.allFinite());
        CHECK((a - x0.leftCols(m)).norm() > 1.0);
    }
    CHECK(path_gap < 1e-9);  // measured 4e-14

    // Negative control: drift u + 2σ² s (theory.md §10.2) = SdeDriftFromScore with σ' = 2σ,
    // noise σ = 1. One batch suffices: it is far off.
    Matrix<double> x_wrong = x0.leftCols(batch);
    {
        sol::EulerMaruyama<double> em{fmd::ConstantSigma(1.0)};
        fmd::SdeDriftFromScore<double, decltype(u), decltype(s), fmd::ConstantSigma> drift(u, s, fmd::ConstantSigma(2.0));
        fmd::Rng rng(3000);
        fmd::integrate(drift, x_wrong, sde_grid, em, rng);
    }
    const double wrong = match.statistic(x_wrong);

    WARN("sliced W2 vs the mixture (floor = RMS of 16 true-vs-true pairs = " << floor << ", threshold 2x = " << threshold
         << "): ODE Heun-100 " << ode << ", ODE RK4-50 " << ode_rk4 << ", SDE EM-500 sigma=0.5 " << sde[0] << ", sigma=1.0 " << sde[1]
         << "; SdeDriftFromScore vs SdeDrift, same noise: max path gap " << path_gap << "; controls: pure noise " << noise << ", drift u + 2 sigma^2 s "
         << wrong);
    CHECK(ode <= threshold);
    CHECK(ode_rk4 <= threshold);
    CHECK(sde[0] <= threshold);
    CHECK(sde[1] <= threshold);
    CHECK(noise > 3 * threshold);
    CHECK(wrong > 2 * threshold);
}

// =============================================================================================
// Reproducibility

TEST_CASE("Same seed gives bit-identical samples, a different seed different ones", "[solver][random]") {
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, three_component_mixture());
    auto u = oracle.velocity_field();
    const auto grid = fmd::grid::uniform(40, 0.0, 0.99);
    auto ode = [&](std::uint64_t seed) {
        fmd::Rng rng(seed);
        Matrix<double> x(2, 64);
        fmd::fill_normal(x, rng);
        sol::RK4<double> rk4;
        fmd::sample(u, x, grid, rk4);
        return x;
    };
    auto sde = [&](std::uint64_t seed) {
        fmd::Rng rng(seed);
        Matrix<double> x(2, 64);
        fmd::fill_normal(x, rng);
        sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.8)};
        fmd::sample(path, u, x, grid, em, rng);
        return x;
    };
    const Matrix<double> a = ode(1), b = ode(1), c = ode(2);
    CHECK(a.allFinite());
    CHECK((a.array() == b.array()).all());
    CHECK((a.array() != c.array()).all());
    const Matrix<double> p = sde(1), q = sde(1), r = sde(2);
    CHECK(p.allFinite());
    CHECK((p.array() == q.array()).all());
    CHECK((p.array() != r.array()).all());
    // Same start, different noise: only the Brownian increments differ.
    Matrix<double> x1 = Matrix<double>::Zero(2, 16), x2 = x1;
    sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.8)};
    fmd::Rng r1(5), r2(6);
    fmd::sample(path, u, x1, grid, em, r1);
    fmd::sample(path, u, x2, grid, em, r2);
    CHECK((x1.array() != x2.array()).all());
    // float follows the same stream.
    fmd::MixtureOracle oracle_f(path, fmd::GaussianMixture<float>::ring(4, 2.0f, 0.5f));
    auto uf = oracle_f.velocity_field();
    auto sde_f = [&](std::uint64_t seed) {
        fmd::Rng rng(seed);
        Matrix<float> x(2, 32);
        fmd::fill_normal(x, rng);
        sol::EulerMaruyama<float> emf{fmd::ConstantSigma(0.8)};
        fmd::sample(path, uf, x, grid, emf, rng);
        return x;
    };
    CHECK((sde_f(9).array() == sde_f(9).array()).all());
    CHECK((sde_f(9).array() != sde_f(10).array()).any());
}

// =============================================================================================
// Accounting and observers

namespace {
template <class St, class F>
void check_nfe(F& field, long& calls) {
    St stepper;
    Matrix<double> x = Matrix<double>::Ones(2, 8);
    calls = 0;
    const auto stats = fmd::integrate(field, x, fmd::grid::uniform(7), stepper);
    CHECK(stats.steps == 7);
    CHECK(stats.nfe == 7 * St::nfe_per_step);
    CHECK(calls == stats.nfe);  // the stepper really calls the field nfe_per_step times
}
}  // namespace

TEST_CASE("NFE is steps x nfe_per_step and matches the field calls", "[solver]") {
    // theory.md §7.3: Euler 1, midpoint 2, Heun 2, RK4 4, Euler–Maruyama 1 NFE per step.
    STATIC_REQUIRE(sol::Euler<double>::nfe_per_step == 1);
    STATIC_REQUIRE(sol::Midpoint<double>::nfe_per_step == 2);
    STATIC_REQUIRE(sol::Heun<double>::nfe_per_step == 2);
    STATIC_REQUIRE(sol::RK4<double>::nfe_per_step == 4);
    STATIC_REQUIRE(sol::EulerMaruyama<double>::nfe_per_step == 1);
    STATIC_REQUIRE(sol::Euler<double>::order == 1);
    STATIC_REQUIRE(sol::Midpoint<double>::order == 2);
    STATIC_REQUIRE(sol::Heun<double>::order == 2);
    STATIC_REQUIRE(sol::RK4<double>::order == 4);
    fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, three_component_mixture());
    long calls = 0;
    double last_t = -1;
    auto counted = [&](fmd::In<double> x, double t, fmd::Out<double> out) {
        ++calls;
        last_t = t;
        oracle.velocity(x, t, out);
    };
    check_nfe<sol::Euler<double>>(counted, calls);
    CHECK(last_t == Approx(6.0 / 7.0));  // Euler never evaluates at t = 1 (theory.md §7.3)
    check_nfe<sol::Midpoint<double>>(counted, calls);
    CHECK(last_t == Approx(13.0 / 14.0));
    check_nfe<sol::Heun<double>>(counted, calls);
    CHECK(last_t == 1.0);  // Heun and RK4 do
    check_nfe<sol::RK4<double>>(counted, calls);
    CHECK(last_t == 1.0);

    sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.3)};
    fmd::Rng rng(1);
    Matrix<double> x = Matrix<double>::Ones(2, 8);
    calls = 0;
    auto stats = fmd::integrate(counted, x, fmd::grid::uniform(9, 0.0, 0.9), em, rng);
    CHECK(stats.steps == 9);
    CHECK(stats.nfe == 9);
    CHECK(calls == 9);
    calls = 0;
    stats = fmd::sample(fmd::GaussianPath<sch::Linear>{}, counted, x, fmd::grid::uniform(5, 0.0, 0.9), em, rng);
    CHECK(stats.nfe == 5);
    CHECK(calls == 5);  // SdeDrift converts u to s: one NFE per step (theory.md §7.6)
}

TEST_CASE("TrajectoryRecorder records every grid point", "[solver]") {
    fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, three_component_mixture());
    auto u = oracle.velocity_field();
    fmd::Rng rng(4);
    Matrix<double> x(2, 10);
    fmd::fill_normal(x, rng);
    const Matrix<double> start = x;
    const auto grid = fmd::grid::from({0.0, 0.1, 0.25, 0.5, 0.8, 1.0});
    fmd::TrajectoryRecorder<double> recorder(3);
    sol::Heun<double> heun;
    fmd::integrate(u, x, grid, heun, recorder);
    REQUIRE(recorder.states.size() == grid.size());
    CHECK(recorder.times == grid);
    for (const auto& state : recorder.states) {
        CHECK(state.rows() == 2);
        CHECK(state.cols() == 3);
    }
    CHECK(recorder.states.front() == start.leftCols(3));
    CHECK(recorder.states.back() == x.leftCols(3));
    CHECK(recorder.states[2] != recorder.states[3]);
    // More requested columns than the batch has: all of them.
    fmd::TrajectoryRecorder<double> wide(50);
    fmd::integrate(u, x, fmd::grid::uniform(3, 0.0, 0.5), heun, wide);
    CHECK(wide.states.size() == 4);
    CHECK(wide.states.back().cols() == 10);
}

TEST_CASE("CheckFinite throws fmd::error when the field yields NaN", "[solver][errors]") {
    auto poisoned = [](fmd::In<double> x, double t, fmd::Out<double> out) {
        out = -x;
        if (t >= 0.5) out(0, 0) = std::numeric_limits<double>::quiet_NaN();
    };
    Matrix<double> x = Matrix<double>::Ones(2, 4);
    sol::Euler<double> euler;
    CHECK_THROWS_MATCHES(fmd::integrate(poisoned, x, fmd::grid::uniform(10), euler, fmd::CheckFinite{}), fmd::error, names("x"));
    // Finite fields pass, and without the observer the NaN goes through silently.
    Matrix<double> y = Matrix<double>::Ones(2, 4);
    CHECK_NOTHROW(fmd::integrate(poisoned, y, fmd::grid::uniform(10, 0.0, 0.4), euler, fmd::CheckFinite{}));
    Matrix<double> z = Matrix<double>::Ones(2, 4);
    CHECK_NOTHROW(fmd::integrate(poisoned, z, fmd::grid::uniform(10), euler));
    CHECK_FALSE(z.allFinite());
    // SDE path too.
    sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.1)};
    fmd::Rng rng(1);
    Matrix<double> w = Matrix<double>::Ones(2, 4);
    CHECK_THROWS_MATCHES(fmd::integrate(poisoned, w, fmd::grid::uniform(10), em, rng, fmd::CheckFinite{}), fmd::error, names("x"));
}

// =============================================================================================
// Argument checks

TEST_CASE("Solvers and grids reject bad inputs naming the argument", "[solver][errors]") {
    CHECK_THROWS_MATCHES(fmd::grid::uniform(0), fmd::error, names("n"));
    CHECK_THROWS_MATCHES(fmd::grid::uniform(-3), fmd::error, names("n"));
    CHECK_THROWS_MATCHES(fmd::grid::uniform(10, 0.5, 0.5), fmd::error, names("t1"));
    CHECK_THROWS_MATCHES(fmd::grid::uniform(10, -0.1, 1.0), fmd::error, names("t0"));
    CHECK_THROWS_MATCHES(fmd::grid::uniform(10, 0.0, 1.5), fmd::error, names("t1"));
    CHECK_THROWS_MATCHES(fmd::grid::from({0.0, 0.5, 0.5, 1.0}), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::grid::from({0.0, 0.6, 0.4, 1.0}), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::grid::from({0.0, 0.5, 1.2}), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::grid::from({-0.1, 0.5}), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::grid::from({0.5}), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::grid::from({0.0, std::nan("")}), fmd::error, names("grid"));
    const auto g = fmd::grid::uniform(4);
    REQUIRE(g.size() == 5);
    CHECK(g.front() == 0.0);
    CHECK(g.back() == 1.0);
    CHECK(g[1] == 0.25);

    auto field = [](fmd::In<double> x, double, fmd::Out<double> out) { out = -x; };
    sol::RK4<double> rk4;
    Matrix<double> empty(2, 0), no_rows(0, 3), x = Matrix<double>::Ones(2, 3);
    CHECK_THROWS_MATCHES(fmd::integrate(field, empty, g, rk4), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(fmd::integrate(field, no_rows, g, rk4), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(fmd::integrate(field, x, std::vector<double>{0.0, 0.5, 0.4}, rk4), fmd::error, names("grid"));

    fmd::Rng rng(1);
    auto negative = sol::euler_maruyama<double>([](double) { return -0.5; });
    CHECK_THROWS_MATCHES(fmd::integrate(field, x, g, negative, rng), fmd::error, names("sigma"));
    auto late_nan = sol::euler_maruyama<double>([](double t) { return t < 0.5 ? 0.3 : std::nan(""); });
    CHECK_THROWS_MATCHES(fmd::integrate(field, x, g, late_nan, rng), fmd::error, names("sigma"));
    sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.5)};
    CHECK_THROWS_MATCHES(fmd::integrate(field, empty, g, em, rng), fmd::error, names("x"));
    CHECK_THROWS_AS(fmd::ConstantSigma(-1), fmd::error);
    CHECK_THROWS_MATCHES(fmd::ConstantSigma(-1), fmd::error, names("sigma"));
    // A user σ_t that is valid passes and is used (σ_t = 0.5(1 − t)).
    auto decaying = sol::euler_maruyama<double>([](double t) { return 0.5 * (1 - t); });
    CHECK(decaying.sigma(0.2) == Approx(0.4));
    CHECK_NOTHROW(fmd::integrate(field, x, g, decaying, rng));
}

// =============================================================================================
// Concepts

namespace {
void plain_field(fmd::In<float>, double, fmd::Out<float>) {}
}  // namespace

TEST_CASE("Stepper and field concepts", "[solver][concepts]") {
    static_assert(sol::OdeStepper<sol::Euler<float>>);
    static_assert(sol::OdeStepper<sol::Euler<double>>);
    static_assert(sol::OdeStepper<sol::Midpoint<float>>);
    static_assert(sol::OdeStepper<sol::Heun<double>>);
    static_assert(sol::OdeStepper<sol::RK4<float>>);
    static_assert(sol::OdeStepper<sol::RK4<double>>);
    static_assert(!sol::OdeStepper<sol::EulerMaruyama<double>>);  // needs a generator
    static_assert(sol::SdeStepper<sol::EulerMaruyama<double>>);
    static_assert(sol::SdeStepper<sol::EulerMaruyama<float>>);
    static_assert(!sol::SdeStepper<sol::Heun<double>>);
    static_assert(!sol::OdeStepper<int>);

    auto user = [](fmd::In<float> x, double t, fmd::Out<float> out) { out = static_cast<float>(t) * x; };
    auto wrong_signature = [](fmd::In<float> x) { return x.sum(); };
    static_assert(fmd::VectorField<decltype(user), float>);
    static_assert(fmd::VectorField<decltype(&plain_field), float>);
    static_assert(!fmd::VectorField<decltype(wrong_signature), float>);
    static_assert(!fmd::VectorField<int, float>);

    fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Cosine>{}, fmd::GaussianMixture<float>::ring(4, 2.0f, 0.4f));
    auto u = oracle.velocity_field();
    auto s = oracle.score_field();
    static_assert(fmd::VectorField<decltype(u), float>);
    static_assert(fmd::ScoreField<decltype(s), float>);
    fmd::EmpiricalOracle empirical(fmd::GaussianPath<sch::Linear>{}, Matrix<double>(Matrix<double>::Ones(2, 3)));
    auto ue = empirical.velocity_field();
    static_assert(fmd::VectorField<decltype(ue), double>);
    static_assert(fmd::SigmaPolicy<fmd::ConstantSigma>);
    static_assert(fmd::SigmaPolicy<decltype([](double t) { return 1 - t; })>);

    // The user lambda drives a real solve: x' = t x from x_0 has x_1 = e^{1/2} x_0.
    Matrix<float> x = Matrix<float>::Ones(1, 2);
    sol::RK4<float> rk4;
    fmd::integrate(user, x, fmd::grid::uniform(20), rk4);
    CHECK(x(0, 0) == Approx(std::exp(0.5)).epsilon(1e-5));
}

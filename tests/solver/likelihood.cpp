// Likelihood by the instantaneous change of variables (theory.md §8.4,
// include/fmd/solver/likelihood.hpp): exact-divergence log p_1 of Gaussian-mixture points
// against the oracle's closed form (theory.md §8.1) for two schedules, with Dopri5, RK4 and AB3;
// a linear field with a JVP against its Gaussian closed form; Hutchinson unbiased within its
// standard error and its probes held fixed along the trajectory; central-difference divergence
// against the analytic one; evaluation counts; argument checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/solver/likelihood.hpp>

#include "support.hpp"

namespace {

namespace sch = fmd::schedule;
namespace sol = fmd::solver;
using fmd::Matrix;
using fmd::Vector;

using fmd_test::names;
using fmd_test::three_component_mixture;

/// Random mixture in d dimensions: K components, means N(0, 4 I), stds in [0.4, 1].
fmd::GaussianMixture<double> random_mixture(int d, int K, fmd::Rng& rng) {
    Matrix<double> mu(d, K);
    fmd::fill_normal(mu, rng);
    mu *= 2.0;
    Vector<double> sd(K), w(K);
    for (int k = 0; k < K; ++k) {
        sd(k) = 0.4 + 0.6 * fmd::uniform01(rng);
        w(k) = 0.5 + fmd::uniform01(rng);
    }
    return {mu, sd, w};
}

/// Data points: mixture draws plus two points off the modes.
template <class S>
Matrix<S> data_points(const fmd::GaussianMixture<S>& mix, fmd::Rng& rng, Eigen::Index n) {
    Matrix<S> x(mix.dim(), n + 2);
    mix.sample(x.leftCols(n), rng);
    x.col(n).setConstant(S(0.2));
    x.col(n + 1).setConstant(S(-3.0));
    return x;
}

/// x' = A x with constant A, with a JVP (A v) and call counters.
struct LinearField {
    Matrix<double> A;
    long calls = 0, jvps = 0;
    void operator()(fmd::In<double> x, double, fmd::Out<double> out) {
        ++calls;
        out.noalias() = A * x;
    }
    void jvp(fmd::In<double> x, double, fmd::In<double> v, fmd::Out<double> out) {
        REQUIRE(x.cols() == v.cols());
        ++jvps;
        out.noalias() = A * v;
    }
};

/// The same field without a JVP: divergence by central differences.
struct LinearFieldNoJvp {
    Matrix<double> A;
    long calls = 0;
    void operator()(fmd::In<double> x, double, fmd::Out<double> out) {
        ++calls;
        out.noalias() = A * x;
    }
};

static_assert(fmd::JvpField<LinearField, double>);
static_assert(!fmd::JvpField<LinearFieldNoJvp, double>);

/// A = a I + w J: X_1 = e^a R(w) X_0, so p_1 = N(0, e^{2a} I) when p_0 = N(0, I).
Matrix<double> spiral_matrix(double a, double w) {
    Matrix<double> A(2, 2);
    A << a, -w, w, a;
    return A;
}
Vector<double> spiral_log_p1(const Matrix<double>& x, double a) {
    Vector<double> r(x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j)
        r(j) = -std::log(2.0 * std::numbers::pi) - 2.0 * a - 0.5 * x.col(j).squaredNorm() * std::exp(-2.0 * a);
    return r;
}

template <class Path>
void check_oracle_likelihood(const Path& path, const std::string& label) {
    fmd::MixtureOracle oracle(path, three_component_mixture<double>());
    auto u = oracle.velocity_field();
    fmd::Rng rng(31);
    const Matrix<double> x = data_points(oracle.mixture(), rng, 10);
    Vector<double> closed(x.cols());
    oracle.log_density(x, 1.0, closed);

    sol::Dopri5<double> dopri({.rtol = 1e-8, .atol = 1e-8});
    const fmd::Likelihood<double> a = fmd::log_likelihood(u, x, dopri);
    sol::RK4<double> rk4;
    const fmd::Likelihood<double> b = fmd::log_likelihood(u, x, fmd::grid::uniform(200), rk4);
    sol::AB3<double> ab3;  // multistep, walked backward: its history restarts at t = 1
    std::vector<std::int64_t> reports;
    const fmd::Likelihood<double> c =
        fmd::log_likelihood(u, x, fmd::grid::uniform(200), ab3, fmd::ExactDivergence{}, [&](std::int64_t done, std::int64_t total) {
            CHECK(total == 200);
            reports.push_back(done);
        });
    REQUIRE(reports.size() == 200);  // one report per step, counting up to the total
    CHECK(reports.front() == 1);
    CHECK(reports.back() == 200);
    const double err_a = (a.log_p - closed).cwiseAbs().maxCoeff();
    const double err_b = (b.log_p - closed).cwiseAbs().maxCoeff();
    const double err_c = (c.log_p - closed).cwiseAbs().maxCoeff();
    INFO(label << ": max |log p - closed form|: Dopri5 " << err_a << " (" << a.stats.nfe << " NFE, " << a.stats.steps
               << " accepted, " << a.stats.rejected << " rejected), RK4-200 " << err_b << ", AB3-200 " << err_c);
    CHECK(err_a <= 1e-3);
    CHECK(err_b <= 1e-3);
    CHECK(err_c <= 1e-3);
    CHECK(c.stats.nfe == 201);  // AB3 on n steps: n + 1 (Heun start)
    // X_0 has the base density: log p_0(X_0) from the oracle equals the N(0, I) term used.
    Vector<double> log_p0(x.cols());
    oracle.log_density(a.x0, 0.0, log_p0);
    CHECK((a.log_p + a.delta - log_p0).cwiseAbs().maxCoeff() <= 1e-12);
    // Central differences: 2d + 1 field calls per augmented evaluation.
    CHECK(a.field_evals == 5 * a.stats.nfe);
    CHECK(a.jvp_evals == 0);
    CHECK(b.stats.nfe == 4 * 200);
    CHECK(b.field_evals == 5 * b.stats.nfe);
}

}  // namespace

TEST_CASE("Exact-divergence likelihood of mixture points matches the closed-form log density", "[solver][likelihood]") {
    check_oracle_likelihood(fmd::GaussianPath<sch::Linear>(), "linear schedule");
    check_oracle_likelihood(fmd::GaussianPath<sch::Cosine>(), "cosine schedule");
}

TEST_CASE("Float likelihood with Dopri5 is close to the closed form", "[solver][likelihood]") {
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, three_component_mixture<float>());
    auto u = oracle.velocity_field();
    fmd::Rng rng(3);
    const Matrix<float> x = data_points(oracle.mixture(), rng, 6);
    Vector<float> closed(x.cols());
    oracle.log_density(x, 1.0, closed);
    sol::Dopri5<float> dopri({.rtol = 1e-5, .atol = 1e-5});
    const fmd::Likelihood<float> r = fmd::log_likelihood(u, x, dopri);
    const double err = (r.log_p - closed.cast<double>()).cwiseAbs().maxCoeff();
    INFO("float: max |log p - closed form| = " << err << " (" << r.stats.nfe << " NFE)");
    CHECK(err <= 1e-2);
}

TEST_CASE("Likelihood of a linear flow: JVP and central differences against the Gaussian closed form", "[solver][likelihood]") {
    const double a = -0.4, w = 2.0;
    Matrix<double> x(2, 4);
    x << 0.3, -1.0, 2.0, 0.0,  //
        0.5, 0.7, -0.4, 0.0;
    const Vector<double> closed = spiral_log_p1(x, a);

    LinearField with{spiral_matrix(a, w)};
    sol::Dopri5<double> dopri({.rtol = 1e-9, .atol = 1e-9});
    const fmd::Likelihood<double> r1 = fmd::log_likelihood(with, x, dopri);
    INFO("JVP, Dopri5: max error " << (r1.log_p - closed).cwiseAbs().maxCoeff());
    CHECK((r1.log_p - closed).cwiseAbs().maxCoeff() <= 1e-6);
    CHECK((r1.delta.array() - 2.0 * a).abs().maxCoeff() <= 1e-9);  // Δ = tr A
    CHECK(r1.field_evals == r1.stats.nfe);
    CHECK(r1.jvp_evals == 2 * r1.stats.nfe);
    CHECK(with.calls == r1.field_evals);
    CHECK(with.jvps == r1.jvp_evals);

    LinearFieldNoJvp without{spiral_matrix(a, w)};
    sol::Heun<double> heun;
    const fmd::Likelihood<double> r2 = fmd::log_likelihood(without, x, fmd::grid::uniform(400), heun);
    INFO("central differences, Heun-400: max error " << (r2.log_p - closed).cwiseAbs().maxCoeff());
    CHECK((r2.log_p - closed).cwiseAbs().maxCoeff() <= 1e-4);
    CHECK(r2.stats.nfe == 800);
    CHECK(r2.field_evals == 5 * 800);
    CHECK(without.calls == r2.field_evals);
}

TEST_CASE("Central-difference divergence matches the oracle's analytic divergence", "[solver][likelihood]") {
    fmd::Rng rng(77);
    const fmd::GaussianPath<sch::Linear> linear;
    const fmd::GaussianPath<sch::Cosine> cosine;
    auto run = [&](const auto& path, const fmd::GaussianMixture<double>& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        auto u = oracle.velocity_field();
        for (double t : {0.0, 0.3, 0.8, 1.0}) {
            Matrix<double> x(mix.dim(), 8);
            fmd::fill_normal(x, rng);
            const auto c = path.coefficients(t);
            Matrix<double> z(mix.dim(), 8);
            mix.sample(z, rng);
            x = c.alpha * z + c.beta * x;  // points on the path at t
            fmd::Row<double> exact(x.cols());
            oracle.divergence(x, t, exact);
            const Vector<double> fd = fmd::divergence(u, x, t);
            const double err = ((fd - exact.transpose()).array().abs() / (1.0 + exact.transpose().array().abs())).maxCoeff();
            INFO(label << ", t = " << t << ": max relative error " << err);
            CHECK(err <= 1e-7);
        }
    };
    run(linear, three_component_mixture<double>(), "2-D, linear");
    run(cosine, three_component_mixture<double>(), "2-D, cosine");
    run(linear, random_mixture(6, 4, rng), "6-D, linear");

    // Float: the default step ∛ε_float ≈ 5e-3; measured error ≈ 1.3e-3 (rounding of u in float
    // over 2δ plus O(δ²) truncation).
    fmd::MixtureOracle oracle_f(linear, three_component_mixture<float>());
    auto uf = oracle_f.velocity_field();
    Matrix<float> xf(2, 8);
    fmd::fill_normal(xf, rng);
    fmd::Row<float> exact_f(8);
    oracle_f.divergence(xf, 0.6, exact_f);
    const Vector<double> fd_f = fmd::divergence(uf, xf, 0.6);
    const double err_f = ((fd_f - exact_f.transpose().cast<double>()).array().abs() / (1.0 + exact_f.transpose().cast<double>().array().abs())).maxCoeff();
    INFO("float: max relative error " << err_f);
    CHECK(err_f <= 5e-3);
}

TEST_CASE("Hutchinson's divergence estimate is unbiased within its standard error", "[solver][likelihood][hutchinson]") {
    fmd::Rng rng(123);
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, random_mixture(5, 3, rng));
    auto u = oracle.velocity_field();
    Matrix<double> x(5, 4);
    fmd::fill_normal(x, rng);
    const double t = 0.6;
    fmd::Row<double> exact(x.cols());
    oracle.divergence(x, t, exact);

    const int seeds = 400;
    Vector<double> sum = Vector<double>::Zero(x.cols()), sum2 = Vector<double>::Zero(x.cols());
    for (int s = 1; s <= seeds; ++s) {
        const Vector<double> est = fmd::divergence(u, x, t, fmd::HutchinsonDivergence{.probes = 1, .seed = static_cast<std::uint64_t>(s)});
        sum += est;
        sum2 += est.cwiseProduct(est);
    }
    double max_se = 0;
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
        const double mean = sum(j) / seeds;
        const double var = std::max(0.0, (sum2(j) - seeds * mean * mean) / (seeds - 1));
        const double se = std::sqrt(var / seeds);
        max_se = std::max(max_se, se);
        INFO("column " << j << ": exact " << exact(j) << ", mean " << mean << " ± " << se << " (SE)");
        // (A point deep inside one component has J ≈ c_k I and almost no Hutchinson variance.)
        CHECK(std::abs(mean - exact(j)) <= 4.0 * se + 1e-9);
    }
    CHECK(max_se > 1e-3);  // a genuinely random estimate

    // More probes, smaller spread: P = 16 is one draw of the mean of 16 single-probe estimates.
    const Vector<double> many = fmd::divergence(u, x, t, fmd::HutchinsonDivergence{.probes = 16, .seed = 9});
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
        const double mean = sum(j) / seeds;
        const double sd1 = std::sqrt((sum2(j) - seeds * mean * mean) / (seeds - 1));
        CHECK(std::abs(many(j) - exact(j)) <= 4.0 * (sd1 / std::sqrt(16.0)));  // 4 SE of a 16-probe mean
    }
}

TEST_CASE("Hutchinson log-likelihood is unbiased and holds its probes along the trajectory", "[solver][likelihood][hutchinson]") {
    SECTION("mixture oracle, RK4: mean over probe seeds vs the exact-divergence solve on the same grid") {
        const fmd::GaussianPath<sch::Linear> path;
        fmd::MixtureOracle oracle(path, three_component_mixture<double>());
        auto u = oracle.velocity_field();
        fmd::Rng rng(8);
        const Matrix<double> x = data_points(oracle.mixture(), rng, 2);
        const auto grid = fmd::grid::uniform(40);
        sol::RK4<double> rk4;
        const Vector<double> exact = fmd::log_likelihood(u, x, grid, rk4).log_p;
        const int seeds = 200;
        Vector<double> sum = Vector<double>::Zero(x.cols()), sum2 = Vector<double>::Zero(x.cols());
        for (int s = 1; s <= seeds; ++s) {
            const fmd::Likelihood<double> r = fmd::log_likelihood(u, x, grid, rk4, fmd::HutchinsonDivergence{.probes = 1, .seed = static_cast<std::uint64_t>(s)});
            sum += r.log_p;
            sum2 += r.log_p.cwiseProduct(r.log_p);
            if (s == 1) CHECK(r.field_evals == 3 * r.stats.nfe);  // 2P + 1 with P = 1
        }
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const double mean = sum(j) / seeds;
            const double se = std::sqrt((sum2(j) - seeds * mean * mean) / (seeds - 1) / seeds);
            INFO("column " << j << ": exact-divergence log p " << exact(j) << ", Hutchinson mean " << mean << " ± " << se);
            CHECK(se > 1e-4);
            CHECK(std::abs(mean - exact(j)) <= 4.0 * se);
        }
    }
    SECTION("linear field, JVP: v fixed along the path makes the error exactly ±b") {
        // A = [[a, b], [0, c]]: vᵀ A v = a + c + b v1 v2 for Rademacher v, so with the probe held
        // fixed the estimate of Δ is tr A ± b: log p is off by exactly |b| for every column.
        Matrix<double> A(2, 2);
        A << -0.3, 0.8, 0.0, 0.2;
        LinearField field{A};
        Matrix<double> x(2, 64);
        fmd::Rng rng(4);
        fmd::fill_normal(x, rng);
        sol::Dopri5<double> dopri({.rtol = 1e-10, .atol = 1e-10});
        const Vector<double> exact = fmd::log_likelihood(field, x, dopri).log_p;
        const fmd::Likelihood<double> h = fmd::log_likelihood(field, x, dopri, fmd::HutchinsonDivergence{.probes = 1, .seed = 5});
        int plus = 0;
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            CHECK(std::abs(std::abs(h.log_p(j) - exact(j)) - 0.8) <= 1e-7);
            plus += h.log_p(j) > exact(j);
        }
        CHECK(plus > 16);  // both signs occur (binomial(64, 1/2): 16 < plus < 48 with prob. > 1 − 1e-4)
        CHECK(plus < 48);
        CHECK(h.jvp_evals == h.stats.nfe);  // P = 1 JVP per augmented evaluation
        // Same seed, same probes, same answer; another seed, other probes.
        const fmd::Likelihood<double> again = fmd::log_likelihood(field, x, dopri, fmd::HutchinsonDivergence{.probes = 1, .seed = 5});
        CHECK(again.log_p == h.log_p);
        const fmd::Likelihood<double> other = fmd::log_likelihood(field, x, dopri, fmd::HutchinsonDivergence{.probes = 1, .seed = 6});
        CHECK(other.log_p != h.log_p);
    }
}

TEST_CASE("Likelihood and divergence reject bad inputs naming the argument", "[solver][likelihood][errors]") {
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, three_component_mixture<double>());
    auto u = oracle.velocity_field();
    Matrix<double> x(2, 3);
    x.setZero();
    sol::Dopri5<double> dopri;
    sol::RK4<double> rk4;
    const double nan = std::numeric_limits<double>::quiet_NaN();

    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, dopri, fmd::HutchinsonDivergence{.probes = 0}), fmd::error, names("probes"));
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, dopri, fmd::HutchinsonDivergence{.probes = -2}), fmd::error, names("probes"));
    CHECK_THROWS_MATCHES(fmd::divergence(u, x, 0.5, fmd::HutchinsonDivergence{.probes = 0}), fmd::error, names("probes"));
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, dopri, fmd::ExactDivergence{.fd_step = -1e-3}), fmd::error, names("fd_step"));
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, dopri, fmd::ExactDivergence{.fd_step = nan}), fmd::error, names("fd_step"));

    Matrix<double> wrong_dim(3, 2);
    wrong_dim.setZero();
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, wrong_dim, dopri), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(fmd::divergence(u, wrong_dim, 0.5), fmd::error, names("x"));
    Matrix<double> empty(2, 0);
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, empty, dopri), fmd::error, names("x"));
    Matrix<double> bad = x;
    bad(0, 1) = nan;
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, bad, std::vector<double>{0.0, 1.0}, rk4), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, std::vector<double>{0.0, 0.5}, rk4), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, std::vector<double>{0.1, 1.0}, rk4), fmd::error, names("grid"));
    CHECK_THROWS_MATCHES(fmd::log_likelihood(u, x, std::vector<double>{0.0, 0.6, 0.4, 1.0}, rk4), fmd::error, names("grid"));

    fmd::LikelihoodField<double, decltype(u)> aug(u, fmd::ExactDivergence{});
    Matrix<double> out(2, 3);
    Vector<double> div(2);
    CHECK_THROWS_MATCHES(aug.evaluate(x, 0.5, out, div), fmd::error, names("div"));
    Matrix<double> small_out(2, 2);
    Vector<double> div3(3);
    CHECK_THROWS_MATCHES(aug.evaluate(x, 0.5, small_out, div3), fmd::error, names("u"));
    Matrix<double> z1(1, 3), o1(1, 3);
    z1.setZero();
    CHECK_THROWS_MATCHES(aug(z1, 0.5, o1), fmd::error, names("z"));
    Matrix<double> z(3, 3), o(3, 2);
    z.setZero();
    CHECK_THROWS_MATCHES(aug(z, 0.5, o), fmd::error, names("out"));
}

// Regression losses (theory.md §6) and training-time samplers (theory.md §6.8).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd_test::half_pi;

using fmd::Matrix;
using fmd::Prediction;
using fmd::Row;
namespace sch = fmd::schedule;
namespace loss = fmd::loss;


using fmd_test::max_abs;
using fmd_test::max_abs_diff;
using fmd_test::normal;

/// Sample mean and standard deviation of a row.
struct Moments {
    double mean, sd;
};
template <class R>
Moments moments(const R& v) {
    const double n = static_cast<double>(v.size());
    const double mean = v.template cast<double>().sum() / n;
    const double var = (v.template cast<double>().array() - mean).square().sum() / (n - 1);
    return {mean, std::sqrt(var)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("linear schedule: the CFM target is x1 - x0 = z - eps exactly, as in the seed loop", "[loss]", float, double) {
    // theory.md §6.2: α = t, β = 1 − t, x0 = noise, x1 = data ⇒ x_t = t·x1 + (1−t)·x0, target x1 − x0.
    using S = TestType;
    fmd::Rng rng(1001);
    const Eigen::Index d = 3, n = 16;
    const Matrix<S> x1 = normal<S>(d, n, rng), x0 = normal<S>(d, n, rng);  // z = x1 (data), ε = x0 (noise)
    Row<S> t(n);
    fmd::time_sampler::Uniform{}(t, rng);
    const fmd::GaussianPath<sch::Linear> path;

    Matrix<S> target(d, n);
    loss::target(loss::cfm, path, x1, x0, t, target);
    const Matrix<S> seed_target = x1 - x0;
    CHECK(target == seed_target);  // bit-exact: 1·z + (−1)·ε

    Matrix<S> xt(d, n);
    path.sample(x1, x0, t, xt);
    for (Eigen::Index j = 0; j < n; ++j) {
        const Eigen::Matrix<S, Eigen::Dynamic, 1> seed_xt = t(j) * x1.col(j) + (S(1) - t(j)) * x0.col(j);
        CHECK(max_abs_diff(xt.col(j), seed_xt) <= 4 * std::numeric_limits<S>::epsilon() * (max_abs(x1) + max_abs(x0)));
    }

    // The seed target is a perfect prediction: zero loss, zero gradient.
    Matrix<S> grad(d, n);
    CHECK(loss::value_and_gradient(loss::cfm, path, seed_target, x1, x0, t, grad) == S(0));
    CHECK(grad.isZero(0));
    // loss::value forms the target in double, so a float batch leaves only the rounding of
    // the float subtraction x1 − x0 (≤ ε_float·|x1 − x0| per entry).
    const double ulp_level = std::numeric_limits<S>::epsilon() * max_abs(seed_target);
    CHECK(static_cast<double>(loss::value(loss::cfm, path, seed_target, x1, x0, t)) <= ulp_level * ulp_level);
    // ... and any other prediction is not.
    CHECK(loss::value(loss::cfm, path, x1, x1, x0, t) > S(0));
}

TEST_CASE("targets with the cosine schedule: CFM α̇z+β̇ε, CSM −ε/β, ε and z", "[loss]") {
    // theory.md §6.2–§6.5 with the closed forms of theory.md §4.1 (computed here from std::cos,
    // independently of schedule::Cosine).
    fmd::Rng rng(1002);
    const Eigen::Index d = 2, n = 7;
    const Matrix<double> z = normal<double>(d, n, rng), eps = normal<double>(d, n, rng);
    Row<double> t(n);
    t << 0.0, 0.05, 0.2, 0.5, 0.7, 0.9, 0.95;
    const fmd::GaussianPath<sch::Cosine> path;
    Matrix<double> cfm(d, n), csm(d, n), e(d, n), x1(d, n);
    loss::target(loss::cfm, path, z, eps, t, cfm);
    loss::target(loss::csm, path, z, eps, t, csm);
    loss::target(loss::epsilon, path, z, eps, t, e);
    loss::target(loss::x1, path, z, eps, t, x1);
    CHECK(e == eps);
    CHECK(x1 == z);
    for (Eigen::Index j = 0; j < n; ++j) {
        INFO("t = " << t(j));
        const double da = half_pi * std::cos(half_pi * t(j)), db = -half_pi * std::sin(half_pi * t(j));
        const double beta = std::cos(half_pi * t(j));
        const Eigen::VectorXd cfm_expected = da * z.col(j) + db * eps.col(j);
        const Eigen::VectorXd csm_expected = -eps.col(j) / beta;
        CHECK(max_abs_diff(cfm.col(j), cfm_expected) <= 1e-14 * (max_abs(z) + max_abs(eps)));
        CHECK(max_abs_diff(csm.col(j), csm_expected) <= 1e-14 * max_abs(csm_expected));
    }
    // Every loss declares the prediction it trains (theory.md §5.1).
    STATIC_REQUIRE(loss::Cfm::prediction == Prediction::velocity);
    STATIC_REQUIRE(loss::Csm::prediction == Prediction::score);
    STATIC_REQUIRE(loss::EpsilonPrediction::prediction == Prediction::epsilon);
    STATIC_REQUIRE(loss::X1Prediction::prediction == Prediction::x1);
}

TEST_CASE("CFM and CSM targets equal the path's conditional velocity and score for every schedule", "[loss][path]") {
    // theory.md §6.2/§3.3 and §6.3/§3.4: the loss module and the path module must agree.
    fmd::Rng rng(1003);
    const Eigen::Index d = 3, n = 6;
    const Matrix<double> z = normal<double>(d, n, rng), eps = normal<double>(d, n, rng);
    Row<double> t(n);
    fmd::time_sampler::Uniform(0.01, 0.95)(t, rng);
    auto check = [&](const std::string& name, const auto& path) {
        INFO(name);
        Matrix<double> a(d, n), b(d, n);
        loss::target(loss::cfm, path, z, eps, t, a);
        path.conditional_velocity(z, eps, t, b);
        CHECK(max_abs_diff(a, b) <= 1e-15 * max_abs(b));
        loss::target(loss::csm, path, z, eps, t, a);
        path.conditional_score(eps, t, b);
        CHECK(max_abs_diff(a, b) <= 1e-15 * max_abs(b));
    };
    check("Linear", fmd::GaussianPath<sch::Linear>{});
    check("Cosine", fmd::GaussianPath<sch::Cosine>{});
    check("Polynomial(3)", fmd::GaussianPath<sch::Polynomial>(sch::Polynomial(3.0)));
    check("Sqrt", fmd::GaussianPath<sch::Sqrt>{});
    check("VP", fmd::GaussianPath<sch::VP>{});
}

// ---------------------------------------------------------------------------------------------
// Values and gradients (theory.md §6.7)
// ---------------------------------------------------------------------------------------------

namespace {

template <class L, class Path>
void check_value_and_gradient(const L& l, const Path& path, const std::string& name, std::uint64_t seed) {
    INFO(name);
    fmd::Rng rng(seed);
    const Eigen::Index d = 3, n = 5;
    const Matrix<double> pred = normal<double>(d, n, rng), z = normal<double>(d, n, rng), eps = normal<double>(d, n, rng);
    Row<double> t(n);
    fmd::time_sampler::Uniform(0.02, 0.95)(t, rng);  // CSM divides by β: stay below 1 (theory.md §4.3)

    Matrix<double> grad(d, n), target(d, n);
    const double v = loss::value_and_gradient(l, path, pred, z, eps, t, grad);
    loss::target(l, path, z, eps, t, target);

    // L = (1/(N d)) Σ_j ‖pred_j − target_j‖² and ∂L/∂pred = 2(pred − target)/(N d).
    const double nd = static_cast<double>(d * n);
    CHECK(v == Approx((pred - target).squaredNorm() / nd).epsilon(1e-13));
    CHECK(max_abs_diff(grad, 2.0 * (pred - target) / nd) <= 1e-15 * max_abs(grad));
    CHECK(loss::value(l, path, pred, z, eps, t) == Approx(v).epsilon(1e-13));

    // Central finite differences of loss::value. L is quadratic in pred, so the difference
    // quotient has no truncation error; rounding is ≈ ε·L·(N d)/h ≈ 1e-16·L·15/1e-4 ≈ 2e-11·L,
    // far below 1e-6·max|∂L/∂pred| (≥ ~0.05·√L here).
    const double h = 1e-4;
    Matrix<double> fd(d, n), p = pred;
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < d; ++i) {
            p(i, j) = pred(i, j) + h;
            const double up = loss::value(l, path, p, z, eps, t);
            p(i, j) = pred(i, j) - h;
            const double down = loss::value(l, path, p, z, eps, t);
            p(i, j) = pred(i, j);
            fd(i, j) = (up - down) / (2 * h);
        }
    CHECK(max_abs_diff(grad, fd) <= 1e-6 * max_abs(grad));

    // grad may be pred itself (documented): same value, same gradient.
    Matrix<double> in_place = pred;
    CHECK(loss::value_and_gradient(l, path, in_place, z, eps, t, in_place) == v);
    CHECK(in_place == grad);

    // float agrees with double to ~1e-5 (inputs rounded to float once).
    const Matrix<float> pf = pred.cast<float>(), zf = z.cast<float>(), ef = eps.cast<float>();
    const Row<float> tf = t.cast<float>();
    Matrix<float> gf(d, n);
    const float vf = loss::value_and_gradient(l, path, pf, zf, ef, tf, gf);
    CHECK(static_cast<double>(vf) == Approx(v).epsilon(1e-5));
    CHECK(max_abs_diff(gf, grad) <= 1e-5 * max_abs(grad));
    CHECK(static_cast<double>(loss::value(l, path, pf, zf, ef, tf)) == Approx(v).epsilon(1e-5));
}

}  // namespace

TEST_CASE("loss gradients match central finite differences; value is the mean over N·d", "[loss]") {
    const fmd::GaussianPath<sch::Cosine> cosine;
    const fmd::GaussianPath<sch::Linear> linear;
    const fmd::GaussianPath<sch::VP> vp;
    check_value_and_gradient(loss::cfm, cosine, "CFM, Cosine", 11);
    check_value_and_gradient(loss::csm, cosine, "CSM, Cosine", 12);
    check_value_and_gradient(loss::epsilon, cosine, "epsilon, Cosine", 13);
    check_value_and_gradient(loss::x1, cosine, "x1, Cosine", 14);
    check_value_and_gradient(loss::cfm, linear, "CFM, Linear", 15);
    check_value_and_gradient(loss::csm, linear, "CSM, Linear", 16);
    check_value_and_gradient(loss::cfm, vp, "CFM, VP", 17);
    check_value_and_gradient(loss::csm, vp, "CSM, VP", 18);
}

TEST_CASE("the exact marginal field of a Gaussian mixture minimizes the CFM loss", "[loss][oracle]") {
    // theory.md §6.2: L_CFM(u) = L_FM(u) + C, so the exact field u⋆ (theory.md §8.1) attains
    // L = C/d > 0 and every other field does worse. Equivalently the residual u⋆ − target is
    // orthogonal to every function h(x, t): E[(u⋆ − target)·h] = 0 (first-order condition).
    const fmd::GaussianPath<sch::Linear> path;
    const auto mixture = fmd::GaussianMixture<double>::ring(5, 2.5, 0.4);
    fmd::MixtureOracle oracle(path, mixture);
    fmd::Rng rng(20240607);
    const Eigen::Index d = 2, n = 4000;
    Matrix<double> z(d, n), eps(d, n), x(d, n), u_star(d, n), target(d, n);
    mixture.sample(z, rng);
    fmd::fill_normal(eps, rng);
    Row<double> t(n);
    fmd::time_sampler::Uniform{}(t, rng);
    path.sample(z, eps, t, x);
    for (Eigen::Index j = 0; j < n; ++j) oracle.velocity(x.col(j), t(j), u_star.col(j));  // per-sample t
    loss::target(loss::cfm, path, z, eps, t, target);

    const double l_star = loss::value(loss::cfm, path, u_star, z, eps, t);
    INFO("L(u*) = " << l_star);
    CHECK(l_star > 0.05);  // C > 0: the conditional targets scatter around u⋆

    const Matrix<double> shift = Matrix<double>::Constant(d, n, 0.25);
    Matrix<double> noise(d, n);
    fmd::fill_normal(noise, rng);
    const std::vector<std::pair<std::string, Matrix<double>>> perturbed{
        {"u* + 0.25", u_star + shift},
        {"u* - 0.25", u_star - shift},
        {"1.1 u*", 1.1 * u_star},
        {"0.9 u*", 0.9 * u_star},
        {"u* + 0.2 x", u_star + 0.2 * x},
        {"u* + 0.3 N(0, 1)", u_star + 0.3 * noise},
        {"x1-prediction oracle used as velocity", [&] {
             Matrix<double> m(d, n);
             for (Eigen::Index j = 0; j < n; ++j) oracle.x1(x.col(j), t(j), m.col(j));
             return m;
         }()},
    };
    for (const auto& [name, field] : perturbed) {
        INFO(name << ": L = " << loss::value(loss::cfm, path, field, z, eps, t));
        CHECK(loss::value(loss::cfm, path, field, z, eps, t) > l_star);
    }

    // First-order condition, per-sample sums c_j = Σ_i r_ij h_ij: |mean| ≤ 4 standard errors.
    auto orthogonality = [&](const Matrix<double>& field, const Matrix<double>& h) {
        const Row<double> c = ((field - target).array() * h.array()).colwise().sum().matrix();
        const Moments m = moments(c);
        return std::abs(m.mean) / (m.sd / std::sqrt(static_cast<double>(n)));  // in standard errors
    };
    const Matrix<double> ones = Matrix<double>::Ones(d, n);
    const Matrix<double> early_x = x * (1.0 - t.array()).matrix().asDiagonal();  // h = (1 − t)·x
    const Matrix<double> late_x = x * t.asDiagonal();                          // h = t·x
    CHECK(orthogonality(u_star, ones) < 4.0);
    CHECK(orthogonality(u_star, x) < 4.0);
    CHECK(orthogonality(u_star, early_x) < 4.0);
    CHECK(orthogonality(u_star, late_x) < 4.0);
    CHECK(orthogonality(u_star, u_star) < 4.0);
    // The same statistic sees a wrong field (so the checks above can fail).
    CHECK(orthogonality(Matrix<double>(u_star + shift), ones) > 4.0);
    CHECK(orthogonality(Matrix<double>(1.1 * u_star), u_star) > 4.0);
}

TEST_CASE("equivalent weights of theory.md §6.6 hold per sample", "[loss][conversion]") {
    // ‖u_θ − u⋆‖² = (D/β)²‖x̂1_θ − z‖² = (D/α)²‖ε_θ − ε‖² = (βD/α)²‖s_θ − s⋆‖², with the four
    // predictions related by path.convert and each squared norm taken from loss::value on one
    // column (times d). Linear: D = 1, weights 1/(1−t)², 1/t², ((1−t)/t)².
    fmd::Rng rng(1004);
    const Eigen::Index d = 4, n = 12;
    const Matrix<double> z = normal<double>(d, n, rng), eps = normal<double>(d, n, rng), x1_theta = normal<double>(d, n, rng);
    Row<double> t(n);
    fmd::time_sampler::Uniform(0.05, 0.95)(t, rng);
    auto check = [&](const std::string& name, const auto& path, bool linear) {
        Matrix<double> x(d, n);
        path.sample(z, eps, t, x);
        for (Eigen::Index j = 0; j < n; ++j) {
            const double tj = t(j);
            INFO(name << " at t = " << tj);
            const Matrix<double> xj = x.col(j), x1j = x1_theta.col(j);
            Matrix<double> u(d, 1), e(d, 1), s(d, 1);
            path.convert(Prediction::x1, Prediction::velocity, xj, x1j, tj, u);
            path.convert(Prediction::x1, Prediction::epsilon, xj, x1j, tj, e);
            path.convert(Prediction::x1, Prediction::score, xj, x1j, tj, s);
            const auto zj = z.col(j), ej = eps.col(j);
            const auto tcol = t.col(j);
            const double dd = static_cast<double>(d);
            const double err_u = dd * loss::value(loss::cfm, path, u, zj, ej, tcol);
            const double err_x1 = dd * loss::value(loss::x1, path, x1j, zj, ej, tcol);
            const double err_e = dd * loss::value(loss::epsilon, path, e, zj, ej, tcol);
            const double err_s = dd * loss::value(loss::csm, path, s, zj, ej, tcol);
            const auto c = path.coefficients(tj);
            const double D = c.D();
            CHECK(err_u == Approx(std::pow(D / c.beta, 2) * err_x1).epsilon(1e-10));
            CHECK(err_u == Approx(std::pow(D / c.alpha, 2) * err_e).epsilon(1e-10));
            CHECK(err_u == Approx(std::pow(c.beta * D / c.alpha, 2) * err_s).epsilon(1e-10));
            if (linear) {
                CHECK(err_u == Approx(err_x1 / ((1 - tj) * (1 - tj))).epsilon(1e-10));
                CHECK(err_u == Approx(err_e / (tj * tj)).epsilon(1e-10));
                CHECK(err_u == Approx(err_s * std::pow((1 - tj) / tj, 2)).epsilon(1e-10));
            }
        }
    };
    check("Linear", fmd::GaussianPath<sch::Linear>{}, true);
    check("Cosine", fmd::GaussianPath<sch::Cosine>{}, false);
    check("VP", fmd::GaussianPath<sch::VP>{}, false);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

TEST_CASE("singular targets and bad shapes throw fmd::error naming the argument", "[loss][errors]") {
    const Eigen::Index d = 2, n = 3;
    const Matrix<double> pred = Matrix<double>::Ones(d, n), z = Matrix<double>::Ones(d, n), eps = Matrix<double>::Ones(d, n);
    Matrix<double> grad(d, n);
    Row<double> t(n);
    t << 0.2, 0.5, 0.7;
    const fmd::GaussianPath<sch::Linear> path;

    SECTION("CSM at t = 1 (β = 0, theory.md §6.3)") {
        Row<double> t1 = t;
        t1(1) = 1.0;
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::csm, path, pred, z, eps, t1, grad), "t");
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::csm, fmd::GaussianPath<sch::Cosine>{}, pred, z, eps, t1, grad), "t");
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::csm, fmd::GaussianPath<sch::VP>{}, pred, z, eps, t1, grad), "t");
        // CFM with Sqrt at t = 1: β̇ = −∞ (theory.md §4.2)
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, fmd::GaussianPath<sch::Sqrt>{}, pred, z, eps, t1, grad), "t");
        // while the bounded targets are fine at t = 1
        CHECK(std::isfinite(loss::value_and_gradient(loss::cfm, path, pred, z, eps, t1, grad)));
        CHECK(std::isfinite(loss::value_and_gradient(loss::epsilon, path, pred, z, eps, t1, grad)));
        CHECK(std::isfinite(loss::value_and_gradient(loss::x1, path, pred, z, eps, t1, grad)));
    }
    SECTION("t outside [0, 1] or of the wrong length") {
        for (double bad : {-0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
            Row<double> tb = t;
            tb(2) = bad;
            CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, path, pred, z, eps, tb, grad), "t");
            CHECK_THROWS_NAMING(loss::value(loss::cfm, path, pred, z, eps, tb), "t");
            CHECK_THROWS_NAMING(loss::target(loss::cfm, path, z, eps, tb, grad), "t");
        }
        const Row<double> t_short = t.head(n - 1);
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, path, pred, z, eps, t_short, grad), "t");
        CHECK_THROWS_NAMING(loss::value(loss::cfm, path, pred, z, eps, t_short), "t");
        CHECK_THROWS_NAMING(loss::target(loss::cfm, path, z, eps, t_short, grad), "t");
    }
    SECTION("shape mismatches") {
        const Matrix<double> wide = Matrix<double>::Ones(d, n + 1), tall = Matrix<double>::Ones(d + 1, n);
        Matrix<double> wrong_grad(d + 1, n);
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, path, pred, wide, eps, t, grad), "z");
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, path, pred, z, tall, t, grad), "eps");
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, path, pred, z, eps, t, wrong_grad), "grad");
        CHECK_THROWS_NAMING(loss::value(loss::cfm, path, pred, tall, eps, t), "z");
        CHECK_THROWS_NAMING(loss::value(loss::cfm, path, pred, z, wide, t), "eps");
        CHECK_THROWS_NAMING(loss::target(loss::cfm, path, z, tall, t, grad), "eps");
        CHECK_THROWS_NAMING(loss::target(loss::cfm, path, z, eps, t, wrong_grad), "out");
    }
    SECTION("empty batch") {
        const Matrix<double> empty(d, 0);
        Matrix<double> empty_out(d, 0);
        const Row<double> t0(0);
        CHECK_THROWS_NAMING(loss::value_and_gradient(loss::cfm, path, empty, empty, empty, t0, empty_out), "pred");
        CHECK_THROWS_NAMING(loss::target(loss::cfm, path, empty, empty, t0, empty_out), "z");
    }
}

// loss::value must check what value_and_gradient checks: a singular target at β_t = 0 and an
// empty batch are errors, not +inf or 0/0 = NaN.
TEST_CASE("loss::value throws where value_and_gradient throws", "[loss][errors]") {
    const fmd::GaussianPath<sch::Linear> path;
    const Matrix<double> ones = Matrix<double>::Ones(2, 3);
    Row<double> t(3);
    t << 0.2, 1.0, 0.7;
    CHECK_THROWS_WITH(loss::value(loss::csm, path, ones, ones, ones, t), Catch::Contains("argument 't'"));
    const Matrix<double> empty(2, 0);
    CHECK_THROWS_WITH(loss::value(loss::cfm, path, empty, empty, empty, Row<double>(0)), Catch::Contains("argument 'pred'"));
}

// ---------------------------------------------------------------------------------------------
// Time samplers (theory.md §6.8)
// ---------------------------------------------------------------------------------------------

TEST_CASE("time_sampler::Uniform: moments within 4 standard errors, range, reproducibility", "[loss][time]") {
    const Eigen::Index n = 20000;
    const double sqrt_n = std::sqrt(static_cast<double>(n));
    auto check = [&](const fmd::time_sampler::Uniform& sampler, std::uint64_t seed) {
        const double lo = sampler.lo, hi = sampler.hi, w = hi - lo;
        INFO("U[" << lo << ", " << hi << "]");
        fmd::Rng rng(seed);
        Row<double> t(n);
        sampler(t, rng);
        CHECK(t.minCoeff() >= lo);
        CHECK(t.maxCoeff() <= hi);
        const Moments m = moments(t);
        // mean (lo+hi)/2, SE w/√(12n); variance w²/12, SE of the sample variance √((μ4 − σ⁴)/n)
        // with μ4 = w⁴/80, σ⁴ = w⁴/144.
        CHECK(std::abs(m.mean - (lo + hi) / 2) <= 4 * w / std::sqrt(12.0) / sqrt_n);
        CHECK(std::abs(m.sd * m.sd - w * w / 12) <= 4 * w * w * std::sqrt(1.0 / 80 - 1.0 / 144) / sqrt_n);
    };
    check(fmd::time_sampler::Uniform{}, 1);
    check(fmd::time_sampler::Uniform(0.0, 0.999), 2);
    check(fmd::time_sampler::Uniform(0.2, 0.7), 3);

    // Same seed ⇒ identical draws, in double and float alike; another seed ⇒ different draws.
    Row<double> a(100), b(100), c(100);
    Row<float> af(100), bf(100);
    fmd::Rng r1(42), r2(42), r3(43), r4(42), r5(42);
    const fmd::time_sampler::Uniform u(0.1, 0.9);
    u(a, r1);
    u(b, r2);
    u(c, r3);
    u(af, r4);
    u(bf, r5);
    CHECK(a == b);
    CHECK(af == bf);
    CHECK(a != c);
    CHECK(max_abs_diff(af, a) <= 1e-7);
}

TEST_CASE("time_sampler::LogitNormal: logit(t) has mean m and sd s; clipping; reproducibility", "[loss][time]") {
    const Eigen::Index n = 20000;
    const double sqrt_n = std::sqrt(static_cast<double>(n));
    for (const auto& [m, s] : std::vector<std::pair<double, double>>{{0.0, 1.0}, {0.5, 0.8}, {-1.0, 1.5}}) {
        INFO("m = " << m << ", s = " << s);
        const fmd::time_sampler::LogitNormal sampler(m, s);
        fmd::Rng rng(7);
        Row<double> t(n);
        sampler(t, rng);
        CHECK(t.minCoeff() > 0.0);
        CHECK(t.maxCoeff() < 1.0);
        const Row<double> logit = (t.array() / (1.0 - t.array())).log().matrix();
        const Moments mo = moments(logit);
        CHECK(std::abs(mo.mean - m) <= 4 * s / sqrt_n);                  // SE of the mean s/√n
        CHECK(std::abs(mo.sd - s) <= 4 * s / std::sqrt(2.0 * n));         // SE of the sd ≈ s/√(2n)
    }
    // The default is SD3's best m = 0, s = 1 (theory.md §6.8).
    const fmd::time_sampler::LogitNormal standard;
    CHECK(standard.m == 0.0);
    CHECK(standard.s == 1.0);

    // density() is the pdf of theory.md §6.8: it integrates to 1 and matches at a point.
    const fmd::time_sampler::LogitNormal ln(0.5, 0.8);
    double integral = 0.0;
    const int steps = 20000;
    for (int k = 0; k < steps; ++k) integral += ln.density((k + 0.5) / steps) / steps;
    CHECK(integral == Approx(1.0).epsilon(1e-4));
    const double t0 = 0.3, l0 = std::log(t0 / (1 - t0));
    CHECK(ln.density(t0) == Approx(std::exp(-(l0 - 0.5) * (l0 - 0.5) / (2 * 0.64)) / (0.8 * std::sqrt(2 * std::numbers::pi) * t0 * (1 - t0))).epsilon(1e-14));

    // Clipping to [lo, hi]: values stay inside, and the clipped mass is P(|n| > logit(0.9)).
    const fmd::time_sampler::LogitNormal clipped(0.0, 1.0, 0.1, 0.9);
    fmd::Rng rng(8);
    Row<double> t(n);
    clipped(t, rng);
    CHECK(t.minCoeff() >= 0.1);
    CHECK(t.maxCoeff() <= 0.9);
    const double at_bounds = static_cast<double>(((t.array() == 0.1) || (t.array() == 0.9)).count()) / static_cast<double>(n);
    const double p = std::erfc(std::log(9.0) / std::sqrt(2.0));  // 2·(1 − Φ(logit 0.9)) ≈ 0.028
    CHECK(std::abs(at_bounds - p) <= 4 * std::sqrt(p * (1 - p) / static_cast<double>(n)));

    // Same seed ⇒ identical draws; another seed ⇒ different draws.
    Row<double> a(100), b(100), c(100);
    fmd::Rng r1(99), r2(99), r3(100);
    ln(a, r1);
    ln(b, r2);
    ln(c, r3);
    CHECK(a == b);
    CHECK(a != c);
}

TEST_CASE("time samplers reject invalid parameters, naming them", "[loss][time][errors]") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{{0.5, 0.5}, {0.7, 0.2}, {-0.1, 1.0}, {0.0, 1.1}, {nan, 1.0}, {0.0, nan}}) {
        INFO("lo = " << lo << ", hi = " << hi);
        CHECK_THROWS_NAMING(fmd::time_sampler::Uniform(lo, hi), "lo, hi");
        CHECK_THROWS_NAMING(fmd::time_sampler::LogitNormal(0.0, 1.0, lo, hi), "lo, hi");
    }
    for (double s : {0.0, -1.0, nan, inf}) {
        INFO("s = " << s);
        CHECK_THROWS_NAMING(fmd::time_sampler::LogitNormal(0.0, s), "s");
    }
    for (double m : {nan, inf, -inf}) {
        INFO("m = " << m);
        CHECK_THROWS_NAMING(fmd::time_sampler::LogitNormal(m, 1.0), "m");
    }
    CHECK_NOTHROW(fmd::time_sampler::Uniform(0.0, 1.0));
    CHECK_NOTHROW(fmd::time_sampler::LogitNormal(-3.0, 0.1, 0.0, 0.99));
}

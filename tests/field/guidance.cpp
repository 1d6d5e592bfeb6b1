// Classifier-free guidance (theory.md §7.8) with the exact class-conditional fields of a labelled
// Gaussian mixture (theory.md §8.1 per class):
//  - Guided equals the closed form (1 − w) u(x|∅) + w u(x|y), with u(x|y) and u(x|∅) taken from
//    MixtureOracles built independently of the conditional oracle, for velocity and score, per-column
//    and broadcast labels, w ∈ {−0.5, 0, 1, 3, 5};
//  - both branches come from ONE call of the wrapped field on [x, x] with labels [y, ∅];
//  - mixing commutes with conversion (theory.md §5.6): the guided score converted to a velocity is
//    the guided velocity, and the SDE drift from the guided velocity equals the drift from
//    separately guided u and s (pathwise, same noise);
//  - at w = 1 ODE and SDE samplers through Guided reproduce p(z | y);
//  - bad inputs name the argument.
#include <catch2/catch.hpp>

#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/field/conditional_mixture.hpp>
#include <fmd/field/guidance.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using fmd::Vector;

using fmd_test::names;
using fmd_test::sliced_w2;

// Three components in 2-D; class 0 owns two of them (a group), class 1 one.
template <class S>
fmd::LabelledMixture<S> three_blobs() {
    Matrix<S> mu(2, 3);
    mu << S(-2), S(-2), S(2.5), S(1), S(-1.5), S(0.5);
    Vector<S> sd(3), w(3);
    sd << S(0.4), S(0.6), S(0.5);
    w << S(1), S(2), S(1.5);
    return {fmd::GaussianMixture<S>(mu, sd, w), {0, 0, 1}};
}

// The same classes written out by hand (not through LabelledMixture::class_mixture).
template <class S>
fmd::GaussianMixture<S> by_hand(int y) {
    Matrix<S> mu(2, y == 0 ? 2 : 1);
    Vector<S> sd(mu.cols()), w(mu.cols());
    if (y == 0) {
        mu << S(-2), S(-2), S(1), S(-1.5);
        sd << S(0.4), S(0.6);
        w << S(1), S(2);
    } else {
        mu << S(2.5), S(0.5);
        sd << S(0.5);
        w << S(1);
    }
    return {mu, sd, w};
}

}  // namespace

TEMPLATE_TEST_CASE("Guided: equals (1 - w) u(x|∅) + w u(x|y) with the exact mixture fields (velocity and score)", "[field][guidance]", float,
                   double) {
    using S = TestType;
    using Path = fmd::GaussianPath<fmd::schedule::Linear>;
    const Path path;
    const auto data = three_blobs<S>();
    fmd::ConditionalMixtureOracle<Path, S> cond(path, data);
    fmd::MixtureOracle<Path, S> full(path, data.mixture()), c0(path, by_hand<S>(0)), c1(path, by_hand<S>(1));
    REQUIRE(cond.null_label() == 2);

    const Eigen::Index n = 9;
    Matrix<S> x(2, n);
    for (Eigen::Index j = 0; j < n; ++j) {
        x(0, j) = S(-3.0 + 0.75 * static_cast<double>(j));
        x(1, j) = S(std::sin(1.3 * static_cast<double>(j)));
    }
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (std::size_t j = 0; j < labels.size(); ++j) labels[j] = static_cast<int>((j / 2) % 2);  // runs 0 0 1 1 0 0 …

    auto field_u = cond.velocity_field();
    auto field_s = cond.score_field();
    const double tol = std::is_same_v<S, float> ? 2e-5 : 1e-12;
    for (const double t : {0.1, 0.5, 0.9}) {
        Matrix<S> u_null(2, n), u0(2, n), u1(2, n), s_null(2, n), s0(2, n), s1(2, n);
        full.velocity(x, t, u_null);
        c0.velocity(x, t, u0);
        c1.velocity(x, t, u1);
        full.score(x, t, s_null);
        c0.score(x, t, s0);
        c1.score(x, t, s1);
        for (const double w : {-0.5, 0.0, 1.0, 3.0, 5.0}) {
            CAPTURE(t, w);
            fmd::Guided<S, decltype(field_u)> gu(field_u, cond.null_label(), w, labels);
            fmd::Guided<S, decltype(field_s)> gs(field_s, cond.null_label(), w, labels);
            Matrix<S> got_u(2, n), got_s(2, n);
            gu(x, t, got_u);
            gs(x, t, got_s);
            for (Eigen::Index j = 0; j < n; ++j) {
                const bool zero = labels[static_cast<std::size_t>(j)] == 0;
                const Vector<S> want_u = S(1 - w) * u_null.col(j) + S(w) * (zero ? u0 : u1).col(j);
                const Vector<S> want_s = S(1 - w) * s_null.col(j) + S(w) * (zero ? s0 : s1).col(j);
                const double scale_u = 1.0 + std::abs(w) * (u_null.col(j).norm() + (zero ? u0 : u1).col(j).norm());
                const double scale_s = 1.0 + std::abs(w) * (s_null.col(j).norm() + (zero ? s0 : s1).col(j).norm());
                CHECK((got_u.col(j) - want_u).norm() <= tol * scale_u);
                CHECK((got_s.col(j) - want_s).norm() <= tol * scale_s);
            }
        }
        // A single label broadcasts to every column.
        fmd::Guided<S, decltype(field_u)> g1(field_u, cond.null_label(), 3.0);
        g1.set_label(1);
        Matrix<S> got(2, n);
        g1(x, t, got);
        const Matrix<S> want = S(-2) * u_null + S(3) * u1;
        CHECK((got - want).norm() <= tol * (1.0 + 5.0 * (u_null.norm() + u1.norm())));
    }
}

TEST_CASE("Guided: one call of the wrapped field on [x, x] with labels [y, ∅]; workspace reused", "[field][guidance]") {
    int calls = 0;
    std::vector<int> seen;
    Eigen::Index seen_cols = 0;
    bool halves_equal = false;
    // u(x|y) = (y + 1)·x, u(x|∅ = 7) = −x: simple enough that every mixing error shows.
    auto f = [&](fmd::In<double> x, double, fmd::Labels labels, fmd::Out<double> out) {
        ++calls;
        seen.assign(labels.begin(), labels.end());
        seen_cols = x.cols();
        const Eigen::Index n = x.cols() / 2;
        halves_equal = x.cols() % 2 == 0 && x.leftCols(n) == x.rightCols(n);
        for (Eigen::Index j = 0; j < x.cols(); ++j) {
            const int y = labels[static_cast<std::size_t>(j)];
            out.col(j) = (y == 7 ? -1.0 : y + 1.0) * x.col(j);
        }
    };
    static_assert(fmd::ConditionalField<decltype(f), double>);
    const std::vector<int> labels = {0, 2, 1};
    fmd::Guided<double, decltype(f)> g(f, 7, 2.5, labels);
    static_assert(fmd::VectorField<decltype(g), double>);
    Matrix<double> x(4, 3), out(4, 3);
    x.setRandom();
    g(x, 0.3, out);
    CHECK(calls == 1);
    CHECK(seen_cols == 6);
    CHECK(halves_equal);
    CHECK(seen == std::vector<int>{0, 2, 1, 7, 7, 7});
    for (Eigen::Index j = 0; j < 3; ++j) {
        const double c = labels[static_cast<std::size_t>(j)] + 1.0;
        CHECK((out.col(j) - (-1.5 * -1.0 + 2.5 * c) * x.col(j)).norm() <= 1e-14);
    }

    SECTION("w = 1 and w = 0 evaluate one branch of n columns") {
        g.set_weight(1.0);
        g(x, 0.3, out);
        CHECK(seen == std::vector<int>{0, 2, 1});
        for (Eigen::Index j = 0; j < 3; ++j) CHECK(out.col(j) == (labels[static_cast<std::size_t>(j)] + 1.0) * x.col(j));
        g.set_weight(0.0);
        g(x, 0.3, out);
        CHECK(seen == std::vector<int>{7, 7, 7});
        CHECK(out == -x);
    }
    SECTION("a smaller batch reuses the workspace") {
        g.set_label(1);
        Matrix<double> x2 = x.leftCols(2), out2(4, 2);
        g(x2, 0.3, out2);
        CHECK(seen == std::vector<int>{1, 1, 7, 7});
        CHECK((out2 - (1.5 + 2.5 * 2.0) * x2).norm() <= 1e-14);
    }
}

TEST_CASE("Guided commutes with conversion (theory.md §5.6): score → velocity, and the SDE drift", "[field][guidance]") {
    using Path = fmd::GaussianPath<fmd::schedule::Cosine>;
    const Path path;
    const auto data = three_blobs<double>();
    fmd::ConditionalMixtureOracle<Path, double> cond(path, data);
    auto fu = cond.velocity_field();
    auto fs = cond.score_field();
    const std::vector<int> labels = {1, 0, 0, 1, 1};
    const double w = 3.0;
    fmd::Guided<double, decltype(fu)> gu(fu, cond.null_label(), w, labels);
    fmd::Guided<double, decltype(fs)> gs(fs, cond.null_label(), w, labels);

    Matrix<double> x(2, 5);
    x << -2.0, 0.5, 1.0, 3.0, -0.25, 1.0, -1.0, 0.0, 0.75, 2.0;
    for (const double t : {0.2, 0.5, 0.8}) {
        CAPTURE(t);
        auto u_from_s = fmd::score_to_velocity(path, gs);
        Matrix<double> a(2, 5), b(2, 5);
        u_from_s(fmd::In<double>(x), t, fmd::Out<double>(a));
        gu(x, t, b);
        CHECK((a - b).norm() <= 1e-10 * (1.0 + b.norm()));
        // And the other way round: guided velocity converted to a score = guided score.
        auto s_from_u = fmd::velocity_to_score(path, gu);
        s_from_u(fmd::In<double>(x), t, fmd::Out<double>(a));
        gs(x, t, b);
        CHECK((a - b).norm() <= 1e-10 * (1.0 + b.norm()));
    }

    // SDE drift u + σ²/2·s: from the guided velocity alone (converted score), or from separately
    // guided u and s (two NFE): same drift, so the same path under the same noise.
    const std::vector<int> many(200, 1);
    gu.set_labels(many);
    gs.set_labels(many);
    Matrix<double> a(2, 200);
    fmd::Rng start(3);
    fmd::fill_normal(a, start);
    Matrix<double> b = a;
    const auto grid = fmd::grid::uniform(200, 0.0, 0.99);
    fmd::solver::EulerMaruyama<double> em{fmd::ConstantSigma(0.8)};
    fmd::Rng ra(11), rb(11);
    fmd::sample(path, gu, a, grid, em, ra);
    fmd::SdeDriftFromScore<double, decltype(gu), decltype(gs), fmd::ConstantSigma> drift(gu, gs, fmd::ConstantSigma(0.8));
    fmd::integrate(drift, b, grid, em, rb);
    CHECK(a.allFinite());
    CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-8);
}

TEST_CASE("Guided at w = 1 through ODE and SDE samplers reproduces p(z | y)", "[field][guidance]") {
    using Path = fmd::GaussianPath<fmd::schedule::Linear>;
    const Path path;
    const auto data = three_blobs<double>();
    fmd::ConditionalMixtureOracle<Path, double> cond(path, data);
    auto fu = cond.velocity_field();
    const Eigen::Index n = 1500;

    fmd::Rng rng(21);
    Matrix<double> ref0(2, n), ref0b(2, n), ref1(2, n);
    data.class_mixture(0).sample(ref0, rng);
    data.class_mixture(0).sample(ref0b, rng);
    data.class_mixture(1).sample(ref1, rng);
    const double noise_floor = sliced_w2(ref0, ref0b);  // two independent samples of p(z | 0)
    const double other = sliced_w2(ref0, ref1);         // a wrong class
    REQUIRE(other > 10 * noise_floor);

    fmd::Guided<double, decltype(fu)> g(fu, cond.null_label(), 1.0);
    g.set_label(0);
    Matrix<double> x0(2, n);
    fmd::fill_normal(x0, rng);

    Matrix<double> ode = x0;
    fmd::solver::Heun<double> heun;
    fmd::sample(g, ode, fmd::grid::uniform(100), heun);
    Matrix<double> sde = x0;
    fmd::solver::EulerMaruyama<double> em{fmd::ConstantSigma(1.0)};
    fmd::sample(path, g, sde, fmd::grid::uniform(400, 0.0, 0.999), em, rng);
    const double d_ode = sliced_w2(ode, ref0), d_sde = sliced_w2(sde, ref0);
    CAPTURE(noise_floor, other, d_ode, d_sde);
    CHECK(d_ode < 2.5 * noise_floor);
    CHECK(d_sde < 2.5 * noise_floor + 0.05);
}

TEST_CASE("Guided and the conditional oracle: bad inputs name the argument", "[field][guidance]") {
    using Path = fmd::GaussianPath<fmd::schedule::Linear>;
    const auto data = three_blobs<double>();
    fmd::ConditionalMixtureOracle<Path, double> cond(Path{}, data);
    auto fu = cond.velocity_field();
    Matrix<double> x(2, 3), out(2, 3);
    x.setZero();
    fmd::Guided<double, decltype(fu)> g(fu, cond.null_label(), 2.0);
    CHECK_THROWS_MATCHES(g(x, 0.5, out), fmd::error, names("labels"));  // not set
    const std::vector<int> two = {0, 1};
    g.set_labels(two);
    CHECK_THROWS_MATCHES(g(x, 0.5, out), fmd::error, names("labels"));  // 2 labels for 3 columns
    CHECK_THROWS_MATCHES(g.set_labels({}), fmd::error, names("labels"));
    CHECK_THROWS_MATCHES(g.set_weight(std::nan("")), fmd::error, names("w"));
    g.set_label(3);  // not a class of this oracle (∅ = 2)
    CHECK_THROWS_MATCHES(g(x, 0.5, out), fmd::error, names("labels"));
    g.set_label(0);
    Matrix<double> wrong(2, 2);
    CHECK_THROWS_MATCHES(g(x, 0.5, wrong), fmd::error, names("out"));
    CHECK_THROWS_MATCHES(cond.oracle(-1), fmd::error, names("y"));
    CHECK_THROWS_MATCHES((fmd::LabelledMixture<double>(data.mixture(), {0, 2, 2})), fmd::error, names("component_class"));
    CHECK_THROWS_MATCHES((fmd::LabelledMixture<double>(data.mixture(), {0, 1})), fmd::error, names("component_class"));
    std::vector<int> lab(2);
    Matrix<double> z(2, 3);
    fmd::Rng rng(1);
    CHECK_THROWS_MATCHES(data.sample(z, std::span<int>(lab), rng), fmd::error, names("labels"));
}

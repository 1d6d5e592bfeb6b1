// Gaussian probability path (theory.md §3.2–§3.4) and the exact conversions between
// velocity, score, ε- and x1-prediction (theory.md §5).
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using fmd::Prediction;
using fmd::Row;
namespace sch = fmd::schedule;

using fmd_test::max_abs;
using fmd_test::max_abs_diff;
using fmd_test::normal;

constexpr std::array<Prediction, 4> all_predictions{Prediction::velocity, Prediction::score, Prediction::epsilon,
                                                    Prediction::x1};

/// "Near machine precision" per scalar type: relative 1e-12 in double (~5e3 ulp), 1e-5 in float
/// (~170 ulp), relative to the natural size of the computation (see convert_tracked). A wrong
/// coefficient anywhere gives an O(1) relative error.
template <class S>
constexpr double machine_tol() {
    return std::is_same_v<S, float> ? 1e-5 : 1e-12;
}

template <class A>
bool all_finite(const Eigen::MatrixBase<A>& a) {
    return a.template cast<double>().allFinite();
}

/// Linear, Cosine, Polynomial(2), Sqrt and VP (default β_min, β_max): theory.md §4.1.
template <class F>
void for_each_path(F&& f) {
    f(std::string("Linear"), fmd::GaussianPath<sch::Linear>{});
    f(std::string("Cosine"), fmd::GaussianPath<sch::Cosine>{});
    f(std::string("Polynomial(2)"), fmd::GaussianPath<sch::Polynomial>(sch::Polynomial(2.0)));
    f(std::string("Sqrt"), fmd::GaussianPath<sch::Sqrt>{});
    f(std::string("VP"), fmd::GaussianPath<sch::VP>(sch::VP{}));
}

/// Applies the conversion from → to in place and returns a first-order bound on the size of
/// the rounding error it carries, in units of the working precision: with out = a·x + b·in,
///   bound_out = |a|·‖x‖ + |b|·(‖in‖ + bound_in).
/// Near the endpoints the maps are ill-conditioned by design (theory.md §5.3): in float,
/// s → x̂1 → s at t = 0.95 loses log10(1/β²) ≈ 2.6 digits through x̂1 = (x + β²s)/α, so
/// "machine precision" has to be relative to this bound, not to ‖in‖ alone.
template <class Path, class S>
double convert_tracked(const Path& path, Prediction from, Prediction to, const Matrix<S>& x, Matrix<S>& cur, double t,
                       double bound_in) {
    const fmd::Affine m = path.conversion(from, to, t);
    const double bound = std::abs(m.a) * max_abs(x) + std::abs(m.b) * (max_abs(cur) + bound_in);
    path.convert(from, to, x, cur, t, cur);  // out may alias in
    return bound;
}

constexpr std::array<double, 6> conversion_times{0.05, 0.2, 0.5, 0.7, 0.8, 0.95};


}  // namespace

// ---------------------------------------------------------------------------------------------
// Sampling and the conditional fields
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("GaussianPath::sample is α_t z + β_t ε per column with per-sample t", "[path]", float, double) {
    using S = TestType;
    fmd::Rng rng(101);
    const Eigen::Index d = 3, n = 9;
    const Matrix<S> z = normal<S>(d, n, rng), eps = normal<S>(d, n, rng);
    Row<S> t(n);
    t << S(0), S(0.05), S(0.2), S(0.35), S(0.5), S(0.65), S(0.8), S(0.95), S(1);  // every column its own t
    for_each_path([&](const std::string& name, const auto& path) {
        INFO(name);
        Matrix<S> x(d, n);
        path.sample(z, eps, t, x);
        const auto& sc = path.schedule();
        for (Eigen::Index j = 0; j < n; ++j) {
            const double tj = static_cast<double>(t(j));
            INFO("column " << j << ", t = " << tj);
            const double a = sc.alpha(tj), b = sc.beta(tj);
            const fmd::Vector<double> expected = a * z.col(j).template cast<double>() + b * eps.col(j).template cast<double>();
            const double scale = std::abs(a) * max_abs(z.col(j)) + std::abs(b) * max_abs(eps.col(j));
            CHECK(max_abs_diff(x.col(j), expected) <= 4 * std::numeric_limits<S>::epsilon() * scale);
        }
        if constexpr (sch::has_exact_boundaries<typename std::remove_cvref_t<decltype(path)>::schedule_type>()) {
            CHECK(x.col(0) == eps.col(0));        // t = 0: pure noise, bit-exact (α_0 = 0, β_0 = 1)
            CHECK(x.col(n - 1) == z.col(n - 1));  // t = 1: pure data (α_1 = 1, β_1 = 0)
        }
    });
}

TEST_CASE("d/dt of x_t at fixed (z, ε) is the conditional velocity (finite differences)", "[path]") {
    // theory.md §8.5 (first item) and §3.3: (x_{t+δ} − x_{t−δ})/(2δ) = α̇_t z + β̇_t ε.
    // δ = 1e-6: truncation δ²|x'''|/6 ≤ 1e-12·3e3·|ε|/6 (VP's β near t = 0.95 is the worst,
    // β ≈ √B(1−t), |β'''| ≈ 3e3) ≈ 1e-9; rounding ≈ ε_mach·|x|/δ ≈ 5e-10. Tolerance 1e-7·max(1, |u|).
    fmd::Rng rng(7);
    const Eigen::Index d = 4, n = 8;
    const Matrix<double> z = normal<double>(d, n, rng), eps = normal<double>(d, n, rng);
    Row<double> t(n);
    t << 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.8, 0.95;
    const double delta = 1e-6;
    const Row<double> t_plus = (t.array() + delta).matrix(), t_minus = (t.array() - delta).matrix();
    for_each_path([&](const std::string& name, const auto& path) {
        INFO(name);
        Matrix<double> x_plus(d, n), x_minus(d, n), u(d, n);
        path.sample(z, eps, t_plus, x_plus);
        path.sample(z, eps, t_minus, x_minus);
        path.conditional_velocity(z, eps, t, u);
        const Matrix<double> fd = (x_plus - x_minus) / (2 * delta);
        for (Eigen::Index j = 0; j < n; ++j) {
            INFO("t = " << t(j));
            CHECK(max_abs_diff(fd.col(j), u.col(j)) <= 1e-7 * std::max(1.0, max_abs(u.col(j))));
        }
        // and the closed form itself, per column with its own t
        for (Eigen::Index j = 0; j < n; ++j) {
            const auto c = path.coefficients(t(j));
            CHECK(max_abs_diff(u.col(j), c.d_alpha * z.col(j) + c.d_beta * eps.col(j)) <= 1e-15 * (1 + max_abs(u.col(j))));
        }
    });
}

TEST_CASE("float conditional_velocity and conditional_score agree with double", "[path]") {
    fmd::Rng rng(8);
    const Eigen::Index d = 3, n = 6;
    const Matrix<float> zf = normal<float>(d, n, rng), ef = normal<float>(d, n, rng);
    Row<float> tf(n);
    tf << 0.0f, 0.05f, 0.3f, 0.6f, 0.9f, 0.95f;
    const Matrix<double> zd = zf.cast<double>(), ed = ef.cast<double>();
    const Row<double> td = tf.cast<double>();
    for_each_path([&](const std::string& name, const auto& path) {
        INFO(name);
        Matrix<float> uf(d, n), sf(d, n);
        Matrix<double> ud(d, n), sd(d, n);
        path.conditional_velocity(zf, ef, tf, uf);
        path.conditional_velocity(zd, ed, td, ud);
        path.conditional_score(ef, tf, sf);
        path.conditional_score(ed, td, sd);
        CHECK(max_abs_diff(uf, ud) <= 1e-6 * max_abs(ud));
        CHECK(max_abs_diff(sf, sd) <= 1e-6 * max_abs(sd));
    });
}

TEMPLATE_TEST_CASE("conditional_velocity_at / conditional_score_at on the path equal the on-path forms", "[path]", float, double) {
    // theory.md §3.3: u_t(x|z) = α̇z + (β̇/β)(x − αz) equals α̇z + β̇ε at x = x_t;
    // theory.md §3.4: ∇log p_t(x|z) = −(x − αz)/β² equals −ε/β at x = x_t.
    using S = TestType;
    fmd::Rng rng(202);
    const Eigen::Index d = 3, n = 5;
    const Matrix<S> z = normal<S>(d, n, rng), eps = normal<S>(d, n, rng);
    for_each_path([&](const std::string& name, const auto& path) {
        for (double t : {0.0, 0.05, 0.3, 0.5, 0.7, 0.95}) {
            INFO(name << " at t = " << t);
            const Row<S> trow = Row<S>::Constant(n, S(t));
            const double ts = static_cast<double>(S(t));  // the time the row actually holds
            Matrix<S> x(d, n), u(d, n), u_at(d, n), s(d, n), s_at(d, n);
            path.sample(z, eps, trow, x);
            path.conditional_velocity(z, eps, trow, u);
            path.conditional_velocity_at(x, z, ts, u_at);
            path.conditional_score(eps, trow, s);
            path.conditional_score_at(x, z, ts, s_at);
            const auto c = path.coefficients(ts);
            // Forming (β̇/β)(x − αz) cancels: scale the tolerance by the size of the terms.
            const double r = std::abs(c.d_beta / c.beta);
            const double u_scale = std::abs(c.d_alpha) * max_abs(z) + r * (max_abs(x) + std::abs(c.alpha) * max_abs(z)) + max_abs(u);
            const double s_scale = (max_abs(x) + std::abs(c.alpha) * max_abs(z)) / (c.beta * c.beta);
            CHECK(max_abs_diff(u_at, u) <= machine_tol<S>() * u_scale);
            CHECK(max_abs_diff(s_at, s) <= machine_tol<S>() * s_scale);
            // and conditional_score is −ε/β itself (theory.md §3.4)
            const Matrix<double> minus_eps_over_beta = -eps.template cast<double>() / c.beta;
            CHECK(max_abs_diff(s, minus_eps_over_beta) <= 4 * std::numeric_limits<S>::epsilon() * max_abs(minus_eps_over_beta));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Conversions (theory.md §5.2)
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("conversion round trips A -> B -> A are the identity for every ordered pair", "[path][conversion]", float, double) {
    // theory.md §8.5 (third item): §5.2 round trips are the identity on t ∈ [δ, 1 − δ].
    using S = TestType;
    fmd::Rng rng(303);
    const Eigen::Index d = 3, n = 4;
    const Matrix<S> x = normal<S>(d, n, rng), in = normal<S>(d, n, rng);
    for_each_path([&](const std::string& name, const auto& path) {
        for (double t : conversion_times) {
            for (Prediction a : all_predictions) {
                for (Prediction b : all_predictions) {
                    if (a == b) continue;
                    INFO(name << " at t = " << t << ": " << fmd::name(a) << " -> " << fmd::name(b) << " -> " << fmd::name(a));
                    Matrix<S> mid(d, n), back(d, n);
                    path.convert(a, b, x, in, t, mid);
                    path.convert(b, a, x, mid, t, back);
                    REQUIRE(all_finite(back));
                    // the same round trip in place (out may alias in), tracking the error bound
                    Matrix<S> in_place = in;
                    const double bound = convert_tracked(path, b, a, x, in_place, t,
                                                         convert_tracked(path, a, b, x, in_place, t, max_abs(in)));
                    CHECK(max_abs_diff(in_place, back) == 0.0);
                    CHECK(max_abs_diff(back, in) <= machine_tol<S>() * bound);
                    if constexpr (std::is_same_v<S, double>) {
                        // In double even the plain relative error stays below 1e-12 on [0.05, 0.95].
                        CHECK(max_abs_diff(back, in) <= 1e-12 * std::max(max_abs(in), max_abs(x)));
                    }
                }
            }
        }
    });
}

TEMPLATE_TEST_CASE("conversion chains close and compose: A -> B -> C equals A -> C", "[path][conversion]", float, double) {
    // Round trips alone would pass if A→B and B→A were wrong in mutually inverse ways;
    // composition through a third prediction ties all twelve maps together (theory.md §5.1).
    using S = TestType;
    fmd::Rng rng(404);
    const Eigen::Index d = 2, n = 3;
    const Matrix<S> x = normal<S>(d, n, rng), in = normal<S>(d, n, rng);
    for_each_path([&](const std::string& name, const auto& path) {
        for (double t : conversion_times) {
            for (Prediction a : all_predictions)
                for (Prediction b : all_predictions)
                    for (Prediction c : all_predictions) {
                        if (a == b || b == c || a == c) continue;
                        INFO(name << " at t = " << t << ": " << fmd::name(a) << " -> " << fmd::name(b) << " -> " << fmd::name(c));
                        Matrix<S> abc = in, ac = in;
                        const double bound_abc = convert_tracked(path, b, c, x, abc, t, convert_tracked(path, a, b, x, abc, t, max_abs(in)));
                        const double bound_ac = convert_tracked(path, a, c, x, ac, t, max_abs(in));
                        CHECK(max_abs_diff(abc, ac) <= machine_tol<S>() * (bound_abc + bound_ac));
                        Matrix<S> abca = abc;
                        const double bound_abca = convert_tracked(path, c, a, x, abca, t, bound_abc);
                        CHECK(max_abs_diff(abca, in) <= machine_tol<S>() * bound_abca);
                    }
            // The four-stage chains through all predictions, e.g. u → ε̂ → x̂1 → s → u.
            const std::array<std::array<Prediction, 3>, 6> orders{{
                {Prediction::epsilon, Prediction::x1, Prediction::score},
                {Prediction::epsilon, Prediction::score, Prediction::x1},
                {Prediction::x1, Prediction::epsilon, Prediction::score},
                {Prediction::x1, Prediction::score, Prediction::epsilon},
                {Prediction::score, Prediction::epsilon, Prediction::x1},
                {Prediction::score, Prediction::x1, Prediction::epsilon},
            }};
            for (const auto& order : orders) {
                INFO(name << " at t = " << t << ": velocity -> " << fmd::name(order[0]) << " -> " << fmd::name(order[1])
                          << " -> " << fmd::name(order[2]) << " -> velocity");
                Matrix<S> cur = in;
                double bound = max_abs(in);
                Prediction from = Prediction::velocity;
                for (Prediction to : order) {
                    bound = convert_tracked(path, from, to, x, cur, t, bound);
                    from = to;
                }
                bound = convert_tracked(path, from, Prediction::velocity, x, cur, t, bound);
                CHECK(max_abs_diff(cur, in) <= machine_tol<S>() * bound);
            }
            // The three-stage example u → ε̂ → x̂1 → u, with separate output buffers.
            Matrix<S> e(d, n), x1(d, n), u(d, n);
            path.convert(Prediction::velocity, Prediction::epsilon, x, in, t, e);
            path.convert(Prediction::epsilon, Prediction::x1, x, e, t, x1);
            path.convert(Prediction::x1, Prediction::velocity, x, x1, t, u);
            Matrix<S> tracked = in;
            double bound = convert_tracked(path, Prediction::velocity, Prediction::epsilon, x, tracked, t, max_abs(in));
            bound = convert_tracked(path, Prediction::epsilon, Prediction::x1, x, tracked, t, bound);
            bound = convert_tracked(path, Prediction::x1, Prediction::velocity, x, tracked, t, bound);
            INFO(name << " at t = " << t << ": u -> eps -> x1 -> u");
            CHECK(max_abs_diff(u, in) <= machine_tol<S>() * bound);
            CHECK(max_abs_diff(u, tracked) == 0.0);
        }
    });
}

TEMPLATE_TEST_CASE("conversions map the conditional pair onto itself", "[path][conversion]", float, double) {
    using S = TestType;
    fmd::Rng rng(505);
    const Eigen::Index d = 3, n = 5;
    const Matrix<S> z = normal<S>(d, n, rng), eps = normal<S>(d, n, rng), x_off = normal<S>(d, n, rng);
    for_each_path([&](const std::string& name, const auto& path) {
        for (double t : conversion_times) {
            INFO(name << " at t = " << t);
            // (1) theory.md §5.2: the velocity→score map sends u_t(x|z) to ∇log p_t(x|z) at
            //     any x, on the path or not — and the score→velocity map back.
            Matrix<S> u(d, n), s(d, n), s_conv(d, n), u_conv(d, n);
            path.conditional_velocity_at(x_off, z, t, u);
            path.conditional_score_at(x_off, z, t, s);
            path.convert(Prediction::velocity, Prediction::score, x_off, u, t, s_conv);
            path.convert(Prediction::score, Prediction::velocity, x_off, s, t, u_conv);
            // error bound: the map's own size (convert_tracked) plus the rounding already in the
            // reference field it is compared with
            const auto vs = path.conversion(Prediction::velocity, Prediction::score, t);
            const auto sv = path.conversion(Prediction::score, Prediction::velocity, t);
            const double bound_s = 2 * (std::abs(vs.a) * max_abs(x_off) + std::abs(vs.b) * max_abs(u)) + max_abs(s);
            const double bound_u = 2 * (std::abs(sv.a) * max_abs(x_off) + std::abs(sv.b) * max_abs(s)) + max_abs(u);
            CHECK(max_abs_diff(s_conv, s) <= machine_tol<S>() * bound_s);
            CHECK(max_abs_diff(u_conv, u) <= machine_tol<S>() * bound_u);

            // (2) On the path x = αz + βε the four conditional predictions are x̂1 = z, ε̂ = ε,
            //     u = α̇z + β̇ε, s = −ε/β (theory.md §3.3–§3.5 with the expectation dropped),
            //     so every conversion A → B maps conditional A onto conditional B.
            const Row<S> trow = Row<S>::Constant(n, S(t));
            Matrix<S> x(d, n), u_on(d, n), s_on(d, n);
            path.sample(z, eps, trow, x);
            path.conditional_velocity(z, eps, trow, u_on);
            path.conditional_score(eps, trow, s_on);
            auto conditional = [&](Prediction p) -> const Matrix<S>& {
                switch (p) {
                    case Prediction::velocity: return u_on;
                    case Prediction::score: return s_on;
                    case Prediction::epsilon: return eps;
                    case Prediction::x1: return z;
                }
                return z;
            };
            const double ts = static_cast<double>(S(t));  // the time the row actually holds
            for (Prediction a : all_predictions)
                for (Prediction b : all_predictions) {
                    INFO(fmd::name(a) << " -> " << fmd::name(b));
                    Matrix<S> out(d, n);
                    path.convert(a, b, x, conditional(a), ts, out);
                    // x and conditional(a) carry rounding of their own: count them twice
                    const auto m = path.conversion(a, b, ts);
                    const double bound = 2 * (std::abs(m.a) * max_abs(x) + std::abs(m.b) * max_abs(conditional(a))) + max_abs(conditional(b));
                    CHECK(max_abs_diff(out, conditional(b)) <= machine_tol<S>() * bound);
                }
        }
    });
}

TEMPLATE_TEST_CASE("linear schedule conversions have the closed forms of theory.md §5.4", "[path][conversion]", float, double) {
    using S = TestType;
    fmd::Rng rng(606);
    const Eigen::Index d = 4, n = 3;
    const Matrix<S> x = normal<S>(d, n, rng), in = normal<S>(d, n, rng);
    const fmd::GaussianPath<sch::Linear> path;
    const double tol = 4 * std::numeric_limits<S>::epsilon();
    for (double t : {0.05, 0.25, 0.5, 0.75, 0.95}) {
        INFO("t = " << t);
        const Matrix<double> xd = x.template cast<double>(), v = in.template cast<double>();
        Matrix<S> out(d, n);
        auto check = [&](Prediction from, Prediction to, const Matrix<double>& expected, double scale) {
            INFO(fmd::name(from) << " -> " << fmd::name(to));
            path.convert(from, to, x, in, t, out);
            CHECK(max_abs_diff(out, expected) <= tol * scale * (max_abs(x) + max_abs(in)));
        };
        // from u (here `in` plays u):
        check(Prediction::velocity, Prediction::x1, xd + (1 - t) * v, 2);                 // x̂1 = x + (1−t)u
        check(Prediction::velocity, Prediction::epsilon, xd - t * v, 2);                  // ε̂ = x − t u
        check(Prediction::velocity, Prediction::score, (t * v - xd) / (1 - t), 2 / (1 - t));  // s = (t u − x)/(1−t)
        // to u (here `in` plays x̂1, ε̂ and s in turn):
        check(Prediction::x1, Prediction::velocity, (v - xd) / (1 - t), 2 / (1 - t));   // u = (x̂1 − x)/(1−t)
        check(Prediction::epsilon, Prediction::velocity, (xd - v) / t, 2 / t);         // u = (x − ε̂)/t
        check(Prediction::score, Prediction::velocity, (xd + (1 - t) * v) / t, 2 / t); // u = (x + (1−t)s)/t
    }
    // t = 0 is regular for velocity → score (α̇_0 = 1 ≠ 0): s = −x, the N(0, I) score (theory.md §5.3).
    Matrix<S> s(d, n);
    path.convert(Prediction::velocity, Prediction::score, x, in, 0.0, s);
    CHECK(s == -x);
    const auto m = path.conversion(Prediction::velocity, Prediction::score, 0.0);
    CHECK(m.a == -1.0);
    CHECK(m.b == 0.0);
    // Cosine too: α̇_0 = π/2, βD = π/2 at t = 0.
    const fmd::GaussianPath<sch::Cosine> cosine;
    cosine.convert(Prediction::velocity, Prediction::score, x, in, 0.0, s);
    CHECK(max_abs_diff(s, -x.template cast<double>()) <= tol * max_abs(x));
}

// ---------------------------------------------------------------------------------------------
// Singular points and bad inputs
// ---------------------------------------------------------------------------------------------

TEST_CASE("singular conversions throw fmd::error naming 't' instead of returning NaN", "[path][conversion][errors]") {
    // theory.md §5.3.
    fmd::Rng rng(707);
    const Matrix<double> x = normal<double>(2, 3, rng), in = normal<double>(2, 3, rng);
    const Matrix<double> sentinel = Matrix<double>::Constant(2, 3, 123.0);
    auto expect_singular = [&](const auto& path, Prediction from, Prediction to, double t) {
        INFO(fmd::name(from) << " -> " << fmd::name(to) << " at t = " << t);
        CHECK_THROWS_NAMING(path.conversion(from, to, t), "t");
        Matrix<double> out = sentinel;
        CHECK_THROWS_NAMING(path.convert(from, to, x, in, t, out), "t");
        CHECK(out == sentinel);  // nothing (in particular no NaN) was written
    };
    const fmd::GaussianPath<sch::Linear> linear;
    expect_singular(linear, Prediction::velocity, Prediction::score, 1.0);  // βD = 0
    expect_singular(linear, Prediction::score, Prediction::velocity, 0.0);  // α = 0
    expect_singular(linear, Prediction::x1, Prediction::velocity, 1.0);     // β = 0
    expect_singular(linear, Prediction::epsilon, Prediction::x1, 0.0);      // α = 0
    // the rest of the table of theory.md §5.3 for the linear schedule
    expect_singular(linear, Prediction::x1, Prediction::epsilon, 1.0);
    expect_singular(linear, Prediction::x1, Prediction::score, 1.0);
    expect_singular(linear, Prediction::epsilon, Prediction::velocity, 0.0);
    expect_singular(linear, Prediction::epsilon, Prediction::score, 1.0);
    expect_singular(linear, Prediction::score, Prediction::x1, 0.0);
    // cosine: βD = (π/2)cos(πt/2) vanishes at t = 1
    expect_singular(fmd::GaussianPath<sch::Cosine>{}, Prediction::velocity, Prediction::score, 1.0);
    // polynomial n > 1: D_0 = 0, conversions out of u fail at t = 0 (theory.md §4.2)
    const fmd::GaussianPath<sch::Polynomial> poly(sch::Polynomial(2.0));
    expect_singular(poly, Prediction::velocity, Prediction::x1, 0.0);
    expect_singular(poly, Prediction::velocity, Prediction::epsilon, 0.0);

    // The regular partners at the same endpoints stay finite.
    Matrix<double> out(2, 3);
    linear.convert(Prediction::velocity, Prediction::score, x, in, 0.0, out);
    CHECK(out == -x);
    linear.convert(Prediction::score, Prediction::epsilon, x, in, 1.0, out);  // −β s = 0 at t = 1
    CHECK(out.isZero(0.0));
    linear.convert(Prediction::velocity, Prediction::x1, x, in, 1.0, out);  // x̂1 = x + (1−t)u = x
    CHECK(out == x);
    // Identity conversions are regular everywhere.
    linear.convert(Prediction::score, Prediction::score, x, in, 1.0, out);
    CHECK(out == in);
}

TEST_CASE("conditional fields at β_t = 0 throw naming 't'", "[path][errors]") {
    const fmd::GaussianPath<sch::Linear> path;
    const Matrix<double> z = Matrix<double>::Ones(2, 2), eps = Matrix<double>::Ones(2, 2);
    Matrix<double> out(2, 2);
    const Row<double> t = Row<double>::Constant(2, 1.0);
    CHECK_THROWS_NAMING(path.conditional_score(eps, t, out), "t");
    CHECK_THROWS_NAMING(path.conditional_velocity_at(z, z, 1.0, out), "t");
    CHECK_THROWS_NAMING(path.conditional_score_at(z, z, 1.0, out), "t");
    // while the on-path velocity is regular at t = 1: α̇z + β̇ε = z − ε
    path.conditional_velocity(z, eps, t, out);
    CHECK(out.isZero(0.0));
}

TEMPLATE_TEST_CASE("bad inputs to the path throw fmd::error naming the argument", "[path][errors]", float, double) {
    using S = TestType;
    const fmd::GaussianPath<sch::Cosine> path;
    const Eigen::Index d = 3, n = 4;
    const Matrix<S> z = Matrix<S>::Ones(d, n), eps = Matrix<S>::Ones(d, n);
    Matrix<S> out(d, n);
    const Row<S> t = Row<S>::Constant(n, S(0.5));

    SECTION("dimension mismatch between z and eps") {
        const Matrix<S> eps_short = Matrix<S>::Ones(d - 1, n), eps_narrow = Matrix<S>::Ones(d, n - 1);
        CHECK_THROWS_NAMING(path.sample(z, eps_short, t, out), "eps");
        CHECK_THROWS_NAMING(path.sample(z, eps_narrow, t, out), "eps");
        CHECK_THROWS_NAMING(path.conditional_velocity(z, eps_short, t, out), "eps");
    }
    SECTION("out of the wrong shape") {
        Matrix<S> wrong(d, n + 1);
        CHECK_THROWS_NAMING(path.sample(z, eps, t, wrong), "out");
        CHECK_THROWS_NAMING(path.conditional_velocity(z, eps, t, wrong), "out");
        CHECK_THROWS_NAMING(path.conditional_score(eps, t, wrong), "out");
        CHECK_THROWS_NAMING(path.conditional_velocity_at(z, z, 0.5, wrong), "out");
        CHECK_THROWS_NAMING(path.conditional_score_at(z, z, 0.5, wrong), "out");
        CHECK_THROWS_NAMING(path.convert(Prediction::velocity, Prediction::score, z, z, 0.5, wrong), "out");
    }
    SECTION("t row of the wrong length or orientation") {
        const Row<S> t_short = Row<S>::Constant(n - 1, S(0.5)), t_long = Row<S>::Constant(n + 1, S(0.5));
        const fmd::Vector<S> t_column = fmd::Vector<S>::Constant(n, S(0.5));
        CHECK_THROWS_NAMING(path.sample(z, eps, t_short, out), "t");
        CHECK_THROWS_NAMING(path.sample(z, eps, t_long, out), "t");
        CHECK_THROWS_NAMING(path.sample(z, eps, t_column, out), "t");
        CHECK_THROWS_NAMING(path.conditional_velocity(z, eps, t_short, out), "t");
        CHECK_THROWS_NAMING(path.conditional_score(eps, t_short, out), "t");
    }
    SECTION("t outside [0, 1]") {
        for (double bad : {-0.1, 1.1, -1e-12, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
            INFO("t = " << bad);
            Row<S> tb = t;
            tb(2) = S(bad);  // one bad entry among good ones
            CHECK_THROWS_NAMING(path.sample(z, eps, tb, out), "t");
            CHECK_THROWS_NAMING(path.conditional_velocity(z, eps, tb, out), "t");
            CHECK_THROWS_NAMING(path.conditional_score(eps, tb, out), "t");
            CHECK_THROWS_NAMING(path.conditional_velocity_at(z, z, bad, out), "t");
            CHECK_THROWS_NAMING(path.conditional_score_at(z, z, bad, out), "t");
            CHECK_THROWS_NAMING(path.conversion(Prediction::velocity, Prediction::x1, bad), "t");
            CHECK_THROWS_NAMING(path.convert(Prediction::velocity, Prediction::x1, z, z, bad, out), "t");
        }
    }
    SECTION("empty batch") {
        const Matrix<S> no_columns(d, 0), no_rows(0, n);
        Matrix<S> out0(d, 0), out_rows(0, n);
        const Row<S> t0(0);
        CHECK_THROWS_NAMING(path.sample(no_columns, no_columns, t0, out0), "z");
        CHECK_THROWS_NAMING(path.sample(no_rows, no_rows, t, out_rows), "z");
        CHECK_THROWS_NAMING(path.conditional_velocity(no_columns, no_columns, t0, out0), "z");
    }
    SECTION("mismatched x, z / x, in at one time") {
        const Matrix<S> other = Matrix<S>::Ones(d + 1, n);
        CHECK_THROWS_NAMING(path.conditional_velocity_at(z, other, 0.5, out), "z");
        CHECK_THROWS_NAMING(path.conditional_score_at(z, other, 0.5, out), "z");
        CHECK_THROWS_NAMING(path.convert(Prediction::velocity, Prediction::score, z, other, 0.5, out), "in");
    }
}

// conditional_score(eps, t, out) must name its own argument 'eps' in errors (not 'z').
TEST_CASE("conditional_score names its own argument 'eps' in errors", "[path][errors]") {
    const fmd::GaussianPath<sch::Linear> path;
    const Matrix<double> empty(2, 0);
    Matrix<double> out0(2, 0), wrong(3, 3);
    const Row<double> t0(0), t = Row<double>::Constant(3, 0.5);
    CHECK_THROWS_WITH(path.conditional_score(empty, t0, out0), Catch::Contains("argument 'eps'"));
    CHECK_THROWS_WITH(path.conditional_score(Matrix<double>::Ones(2, 3), t, wrong), Catch::Contains("'eps'"));
}

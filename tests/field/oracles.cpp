// Analytic fields (theory.md §8): MixtureOracle, EmpiricalOracle and the field adapters.
//
// The mixture oracle is checked against identities it must satisfy rather than against its own
// formulas: the continuity equation (theory.md §3.6) with every derivative taken by finite
// differences of log_density and velocity, the score and divergence as finite-difference
// derivatives, the posterior-mean hub of theory.md §3.5 / §5.1, the conversion table of
// theory.md §5.2, and Fokker–Planck for the SDE drift of theory.md §3.7 (with the seed's
// wrong drift of theory.md §10.2 as a negative control).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

namespace sch = fmd::schedule;
using fmd::Matrix;
using fmd::Vector;

// ---------------------------------------------------------------------------------------------
// Error-message checks: every bad input throws fmd::error naming the argument.

using fmd_test::names;

// ---------------------------------------------------------------------------------------------
// Precision per scalar type. The finite-difference steps are powers of two and every test point
// is a multiple of 2^-10, so x ± k·h is exact in float and double: the only errors are the
// stencil's truncation and the rounding of the evaluated function.
//
//   first derivative (5 points):  (f(−2h) − 8f(−h) + 8f(h) − f(2h))/(12h)          error h⁴f⁽⁵⁾/30
//   second derivative (5 points): (−f(2h) + 16f(h) − 30f(0) + 16f(−h) − f(−2h))/(12h²) error h⁴f⁽⁶⁾/90
//
// double: hx = 2^-8, ht = 2^-10. The stiffest log-density here has curvature 1/v ≤ 1/0.0625
// (s_k = 0.25), and VP's b ≤ 20 sets the time scale, giving truncation ≲ 1e-8 relative;
// rounding ≈ 1e-16·|ℓ|/h ≲ 1e-12. Tolerance 1e-6 relative leaves a wide margin, while a wrong
// formula (a factor 2 in c_k, a missing term in div u) is off by O(1).
// float: the function values carry ≈ 6e-8·|ℓ| rounding, amplified by 1/h (1/h² for the
// Laplacian), so the steps are larger (hx = 2^-5, ht = 2^-7) and the tolerance is 2e-2 relative —
// still two orders below the O(1) residuals the identities are meant to catch.
// Measured worst cases (GCC 12, x86-64): continuity 8e-9 (double) / 2.5e-3 (float),
// Fokker–Planck 1.4e-9 (double).
// The closed-form identities (no differencing) use 1e-11 (double) and 2e-4 (float) relative
// to the size of the terms involved (conversions: 10x that, they divide by α, β or D);
// measured worst cases 1.2e-13 (double) and 1.8e-5 / 9e-5 (float).
template <class S>
struct Precision;
template <>
struct Precision<double> {
    static constexpr double hx = 1.0 / 256, ht = 1.0 / 1024;
    static constexpr double fd_tol = 1e-6, laplacian_tol = 1e-6, exact_tol = 1e-11;
};
template <>
struct Precision<float> {
    static constexpr double hx = 1.0 / 32, ht = 1.0 / 128;
    static constexpr double fd_tol = 2e-2, exact_tol = 2e-4;  // no Laplacian test in float
};

template <class F>
double first_derivative(const F& f, double h) {
    return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h);
}
template <class F>
double second_derivative(const F& f, double h) {
    return (-f(2 * h) + 16 * f(h) - 30 * f(0.0) + 16 * f(-h) - f(-2 * h)) / (12 * h * h);
}

// ---------------------------------------------------------------------------------------------
// Data sets: unequal weights and standard deviations (theory.md §8.1). The 1-D and 5-D mixtures
// exercise the oracle's other velocity kernels (d = 1 unrolled, d > 3 generic).

template <class S>
fmd::GaussianMixture<S> mixture_1d() {
    Matrix<S> mu(1, 2);
    mu << -1.5, 2.0;
    Vector<S> sd(2), w(2);
    sd << 0.4, 0.9;
    w << 1, 3;
    return {mu, sd, w};
}
template <class S>
fmd::GaussianMixture<S> mixture_3d() {
    Matrix<S> mu(3, 4);
    mu << 1.0, -1.0, 0.0, 2.0,  //
        0.0, 1.5, -2.0, 1.0,    //
        -1.0, 0.5, 1.0, -1.5;
    Vector<S> sd(4), w(4);
    sd << 0.25, 0.5, 0.8, 0.4;
    w << 1, 2, 3, 4;
    return {mu, sd, w};
}
template <class S>
fmd::GaussianMixture<S> mixture_5d() {
    Matrix<S> mu(5, 2);
    mu << 1.0, -1.0,  //
        0.5, 0.0,     //
        -0.5, 1.0,    //
        0.0, 0.5,     //
        1.5, -0.5;
    Vector<S> sd(2), w(2);
    sd << 0.5, 0.7;
    w << 2, 1;
    return {mu, sd, w};
}

template <class S>
std::vector<std::pair<std::string, fmd::GaussianMixture<S>>> mixtures() {
    return {{"1-D", mixture_1d<S>()}, {"2-D", fmd_test::three_component_mixture<S>()}, {"3-D", mixture_3d<S>()}, {"5-D", mixture_5d<S>()}};
}

// Calls fn(path, mixture, label) for every mixture under the linear, cosine and VP schedules.
template <class S, class Fn>
void for_each_setup(Fn&& fn) {
    for (const auto& [name, mix] : mixtures<S>()) {
        fn(fmd::GaussianPath<sch::Linear>{}, mix, name + " linear");
        fn(fmd::GaussianPath<sch::Cosine>{}, mix, name + " cosine");
        fn(fmd::GaussianPath<sch::VP>(sch::VP{}), mix, name + " VP");
    }
}

// Points where p_t has mass (x = α z + β ε) plus a tail point per batch, rounded to multiples
// of 2^-10 so finite-difference offsets are exact.
template <class S, class Path>
Matrix<S> points(const Path& path, const fmd::GaussianMixture<S>& mix, double t, Eigen::Index n, fmd::Rng& rng) {
    Matrix<S> z(mix.dim(), n), e(mix.dim(), n);
    mix.sample(z, rng);
    fmd::fill_normal(e, rng);
    const auto c = path.coefficients(t);
    Matrix<S> x = S(c.alpha) * z + S(c.beta) * e;
    x.col(n - 1) *= S(1.7);  // a point in the tails
    return (x.array() * S(1024)).round() / S(1024);
}

// Single-column evaluations in double, for the finite-difference stencils.
template <class O, class S>
double log_p(O& oracle, const Matrix<S>& x, double t) {
    fmd::Row<S> out(1);
    oracle.log_density(x, t, out);
    return static_cast<double>(out(0));
}
template <class S>
Matrix<S> shifted(const Matrix<S>& x, Eigen::Index i, double o) {
    Matrix<S> y = x;
    y(i) += S(o);
    return y;
}

/// ∇ℓ by finite differences of log_density.
template <class O, class S>
Vector<double> fd_grad_log_p(O& oracle, const Matrix<S>& x, double t, double h) {
    Vector<double> g(x.rows());
    for (Eigen::Index i = 0; i < x.rows(); ++i)
        g(i) = first_derivative([&](double o) { return log_p(oracle, shifted(x, i, o), t); }, h);
    return g;
}
/// Δℓ by finite differences of log_density.
template <class O, class S>
double fd_laplacian_log_p(O& oracle, const Matrix<S>& x, double t, double h) {
    double lap = 0;
    for (Eigen::Index i = 0; i < x.rows(); ++i)
        lap += second_derivative([&](double o) { return log_p(oracle, shifted(x, i, o), t); }, h);
    return lap;
}
/// div f by finite differences of a field f(x, t, out); `abs_sum` receives Σ_i |∂f_i/∂x_i|.
template <class F, class S>
double fd_divergence(F& f, const Matrix<S>& x, double t, double h, double* abs_sum = nullptr) {
    double div = 0, total = 0;
    Matrix<S> out(x.rows(), 1);
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
        const double di = first_derivative(
            [&](double o) {
                f(fmd::In<S>(shifted(x, i, o)), t, fmd::Out<S>(out));
                return static_cast<double>(out(i));
            },
            h);
        div += di;
        total += std::abs(di);
    }
    if (abs_sum) *abs_sum = total;
    return div;
}

constexpr double fd_times[] = {0.1, 0.35, 0.6, 0.85};

/// max over entries of |actual − expected| / scale, scale > 0 entrywise.
template <class A, class B, class C>
double max_relative(const A& actual, const B& expected, const C& scale) {
    return ((actual.template cast<double>() - expected.template cast<double>()).array().abs() /
            scale.template cast<double>().array())
        .maxCoeff();
}

}  // namespace

// =============================================================================================
// MixtureOracle

TEMPLATE_TEST_CASE("MixtureOracle satisfies the continuity equation (finite differences)", "[field][oracle]", float, double) {
    // theory.md §3.6, §8.1: ∂_t p_t + div(p_t u_t) = 0, divided by p_t:
    //   R = ∂_t ℓ + div u + ∇ℓ·u = 0,   ℓ = log p_t.
    // ∂_t ℓ and ∇ℓ are finite differences of log_density, div u of velocity: no analytic
    // derivative of the oracle enters, so the check ties velocity to log_density.
    using S = TestType;
    using P = Precision<S>;
    fmd::Rng rng(101);
    double worst = 0;
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        auto u = oracle.velocity_field();
        for (double t : fd_times) {
            const Matrix<S> xs = points(path, mix, t, 6, rng);
            for (Eigen::Index j = 0; j < xs.cols(); ++j) {
                const Matrix<S> x = xs.col(j);
                const double dt = first_derivative([&](double o) { return log_p(oracle, x, t + o); }, P::ht);
                const Vector<double> grad = fd_grad_log_p(oracle, x, t, P::hx);
                double div_abs = 0;
                const double div = fd_divergence(u, x, t, P::hx, &div_abs);
                Matrix<S> ux(x.rows(), 1);
                u(x, t, ux);
                const double transport = grad.dot(ux.col(0).template cast<double>());
                const double residual = dt + div + transport;
                const double scale = std::abs(dt) + div_abs + std::abs(transport);
                INFO(label << ", t = " << t << ", x = " << x.transpose());
                INFO("d/dt log p = " << dt << ", div u = " << div << ", grad log p . u = " << transport << ", residual = " << residual);
                CHECK(std::abs(residual) <= P::fd_tol * scale);
                worst = std::max(worst, std::abs(residual) / scale);
            }
        }
    });
    WARN("continuity residual / scale, worst case (" << (sizeof(S) == 4 ? "float" : "double") << "): " << worst);
}

TEMPLATE_TEST_CASE("MixtureOracle score and divergence match finite differences", "[field][oracle]", float, double) {
    // theory.md §8.1: s_t = ∇log p_t (finite differences of log_density) and
    // div u_t = Σ_k w_k [d c_k + (s_k − s_t)·u_k] (finite differences of velocity).
    using S = TestType;
    using P = Precision<S>;
    fmd::Rng rng(202);
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        auto u = oracle.velocity_field();
        for (double t : fd_times) {
            const Matrix<S> xs = points(path, mix, t, 6, rng);
            Matrix<S> score(xs.rows(), xs.cols());
            fmd::Row<S> div(xs.cols());
            oracle.score(xs, t, score);
            oracle.divergence(xs, t, div);
            for (Eigen::Index j = 0; j < xs.cols(); ++j) {
                const Matrix<S> x = xs.col(j);
                const Vector<double> grad = fd_grad_log_p(oracle, x, t, P::hx);
                double div_abs = 0;
                const double fd_div = fd_divergence(u, x, t, P::hx, &div_abs);
                INFO(label << ", t = " << t << ", x = " << x.transpose());
                INFO("score = " << score.col(j).transpose() << ", finite difference = " << grad.transpose());
                CHECK((score.col(j).template cast<double>() - grad).norm() <= P::fd_tol * (1.0 + grad.norm()));
                INFO("divergence = " << div(j) << ", finite difference = " << fd_div);
                CHECK(std::abs(static_cast<double>(div(j)) - fd_div) <= P::fd_tol * (1.0 + div_abs));
            }
        }
    });
}

TEMPLATE_TEST_CASE("MixtureOracle at t = 0 (linear) is u_0(x) = E[z] - x", "[field][oracle]", float, double) {
    // theory.md §8.1: at t = 0 the posterior weights are the prior weights π_k and
    // u_0(x) = α̇_0 Σ_k π_k μ_k + β̇_0 x, i.e. E[z] − x for the linear schedule.
    using S = TestType;
    fmd::Rng rng(303);
    for (const auto& [label, mix] : mixtures<S>()) {
        fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, mix);
        Matrix<S> x(mix.dim(), 16), u(mix.dim(), 16);
        fmd::fill_normal(x, rng);
        x *= S(2);
        oracle.velocity(x, 0.0, u);
        const Vector<S> mean = mix.means() * mix.weights();
        const Matrix<S> expected = mean.replicate(1, x.cols()) - x;
        INFO(label << ": E[z] = " << mean.transpose());
        const Matrix<S> scale = (x.array().abs() + S(1)).matrix();
        CHECK(max_relative(u, expected, scale) <= Precision<S>::exact_tol);
    }
}

TEMPLATE_TEST_CASE("MixtureOracle posterior means satisfy the hub identities", "[field][oracle]", float, double) {
    // theory.md §3.5 / §5.1: x = α x̂1 + β ε̂,  u = α̇ x̂1 + β̇ ε̂,  s = −ε̂/β.
    using S = TestType;
    const double tol = Precision<S>::exact_tol;
    fmd::Rng rng(404);
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        for (double t : {0.0, 0.05, 0.3, 0.5, 0.8, 0.97}) {
            const Matrix<S> x = points(path, mix, t, 12, rng);
            const auto n = x.cols(), d = x.rows();
            Matrix<S> x1(d, n), eps(d, n), u(d, n), s(d, n);
            oracle.x1(x, t, x1);
            oracle.epsilon(x, t, eps);
            oracle.velocity(x, t, u);
            oracle.score(x, t, s);
            const auto c = path.coefficients(t);
            const S a = S(c.alpha), b = S(c.beta), da = S(c.d_alpha), db = S(c.d_beta);
            INFO(label << ", t = " << t);
            const Matrix<S> sx = ((a * x1).array().abs() + (b * eps).array().abs() + x.array().abs() + S(1e-3)).matrix();
            CHECK(max_relative(Matrix<S>(a * x1 + b * eps), x, sx) <= tol);
            const Matrix<S> su = ((da * x1).array().abs() + (db * eps).array().abs() + u.array().abs() + S(1e-3)).matrix();
            CHECK(max_relative(Matrix<S>(da * x1 + db * eps), u, su) <= tol);
            const Matrix<S> ss = (s.array().abs() + eps.array().abs() / b + S(1e-3)).matrix();
            CHECK(max_relative(Matrix<S>(-eps / b), s, ss) <= tol);
        }
    });
}

TEMPLATE_TEST_CASE("MixtureOracle fields agree with GaussianPath::convert", "[field][oracle][path]", float, double) {
    // theory.md §5.2: every prediction is an affine function of any other, with t-only
    // coefficients; the oracle computes u, s, x̂1, ε̂ independently (theory.md §8.1).
    using S = TestType;
    using fmd::Prediction;
    const double tol = 10 * Precision<S>::exact_tol;  // conversions divide by α, β, D
    fmd::Rng rng(505);
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        for (double t : {0.1, 0.3, 0.5, 0.8, 0.95}) {
            const Matrix<S> x = points(path, mix, t, 12, rng);
            const auto n = x.cols(), d = x.rows();
            Matrix<S> x1(d, n), eps(d, n), u(d, n), s(d, n), out(d, n);
            oracle.x1(x, t, x1);
            oracle.epsilon(x, t, eps);
            oracle.velocity(x, t, u);
            oracle.score(x, t, s);
            const std::pair<Prediction, const Matrix<S>*> fields[] = {
                {Prediction::velocity, &u}, {Prediction::score, &s}, {Prediction::epsilon, &eps}, {Prediction::x1, &x1}};
            for (const auto& [from, in] : fields) {
                for (const auto& [to, expected] : fields) {
                    const fmd::Affine m = path.conversion(from, to, t);
                    path.convert(from, to, x, *in, t, out);
                    INFO(label << ", t = " << t << ": " << fmd::name(from) << " -> " << fmd::name(to));
                    const Matrix<S> scale =
                        (std::abs(m.a) * x.array().abs() + std::abs(m.b) * in->array().abs() + expected->array().abs() + S(1e-3)).matrix();
                    CHECK(max_relative(out, *expected, scale) <= tol);
                }
            }
        }
    });
}

TEST_CASE("MixtureOracle satisfies Fokker-Planck with drift u + sigma^2/2 s, not u + 2 sigma^2 s", "[field][oracle]") {
    // theory.md §3.6/§3.7: with b = u + (σ²/2) s,  ∂_t p = −div(p b) + (σ²/2) Δp. Divided by p:
    //   R = ∂_t ℓ + div b + ∇ℓ·b − (σ²/2)(Δℓ + ‖∇ℓ‖²) = 0.
    // div b comes from finite differences of the drift, ∇ℓ and Δℓ from finite differences of
    // log_density. The seed's drift u + 2σ² s (theory.md §10.2) leaves R = (3σ²/2)·Δp/p, O(1).
    // Double only: the float Laplacian of log_density is too noisy for this tolerance.
    using S = double;
    using P = Precision<S>;
    const double sigma = 0.7;
    fmd::Rng rng(606);
    double worst_correct = 0, wrong_residual = 0, wrong_scale = 0;
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        for (const double coef : {0.5 * sigma * sigma, 2.0 * sigma * sigma}) {
            auto drift = [&oracle, coef](fmd::In<S> x, double t, fmd::Out<S> out) {
                Matrix<S> s(x.rows(), x.cols());
                oracle.score(x, t, s);
                oracle.velocity(x, t, out);
                out += coef * s;
            };
            for (double t : fd_times) {
                const Matrix<S> xs = points(path, mix, t, 4, rng);
                for (Eigen::Index j = 0; j < xs.cols(); ++j) {
                    const Matrix<S> x = xs.col(j);
                    const double dt = first_derivative([&](double o) { return log_p(oracle, x, t + o); }, P::ht);
                    const Vector<double> grad = fd_grad_log_p(oracle, x, t, P::hx);
                    const double lap = fd_laplacian_log_p(oracle, x, t, P::hx);
                    double div_abs = 0;
                    const double div = fd_divergence(drift, x, t, P::hx, &div_abs);
                    Matrix<S> b(x.rows(), 1);
                    drift(x, t, b);
                    const double transport = grad.dot(b.col(0));
                    const double diffusion = 0.5 * sigma * sigma * (lap + grad.squaredNorm());
                    const double residual = dt + div + transport - diffusion;
                    const double scale = std::abs(dt) + div_abs + std::abs(transport) + 0.5 * sigma * sigma * (std::abs(lap) + grad.squaredNorm());
                    if (coef == 0.5 * sigma * sigma) {
                        INFO(label << ", t = " << t << ", x = " << x.transpose() << ": residual " << residual << ", scale " << scale);
                        CHECK(std::abs(residual) <= P::laplacian_tol * scale);
                        worst_correct = std::max(worst_correct, std::abs(residual) / scale);
                    } else {
                        wrong_residual += std::abs(residual);
                        wrong_scale += scale;
                    }
                }
            }
        }
    });
    WARN("Fokker-Planck residual / scale: drift u + sigma^2/2 s worst " << worst_correct
         << "; drift u + 2 sigma^2 s mean " << wrong_residual / wrong_scale);
    // The wrong drift must fail the same check by orders of magnitude (the test can fail).
    CHECK(wrong_residual / wrong_scale > 0.05);
}

TEMPLATE_TEST_CASE("MixtureOracle with one component matches the single-Gaussian closed form", "[field][oracle]", float, double) {
    // theory.md §8.2 with Σ = s² I: p_t = N(α μ, V I), V = α² s² + β²,
    // u_t(x) = α̇ μ + ½ (V̇/V)(x − α μ), s_t(x) = −(x − α μ)/V, div u = d·½V̇/V,
    // x̂1 = μ + (α s²/V)(x − α μ) (Gaussian conditioning).
    using S = TestType;
    const double tol = Precision<S>::exact_tol;
    Matrix<S> mu(3, 1);
    mu << 0.7, -1.2, 0.4;
    const double sd = 0.4;
    const fmd::GaussianMixture<S> gauss(mu, Vector<S>::Constant(1, S(sd)), Vector<S>::Ones(1));
    fmd::Rng rng(707);
    auto check = [&](const auto& path, const std::string& label) {
        fmd::MixtureOracle oracle(path, gauss);
        for (double t : {0.0, 0.2, 0.5, 0.75, 0.9}) {
            const auto c = path.coefficients(t);
            const double V = c.alpha * c.alpha * sd * sd + c.beta * c.beta;
            const double dV = 2 * (c.alpha * c.d_alpha * sd * sd + c.beta * c.d_beta);
            Matrix<double> x(3, 10);
            fmd::fill_normal(x, rng);
            x *= 1.5;
            const Matrix<S> xs = x.cast<S>();
            const Matrix<double> centered = xs.template cast<double>() - c.alpha * mu.template cast<double>().replicate(1, x.cols());
            const Matrix<double> u_exact = c.d_alpha * mu.template cast<double>().replicate(1, x.cols()) + 0.5 * dV / V * centered;
            const Matrix<double> s_exact = -centered / V;
            const Matrix<double> x1_exact = mu.template cast<double>().replicate(1, x.cols()) + (c.alpha * sd * sd / V) * centered;
            Matrix<S> u(3, 10), s(3, 10), x1(3, 10);
            fmd::Row<S> logp(10), div(10);
            oracle.velocity(xs, t, u);
            oracle.score(xs, t, s);
            oracle.x1(xs, t, x1);
            oracle.log_density(xs, t, logp);
            oracle.divergence(xs, t, div);
            INFO(label << ", t = " << t);
            const Matrix<double> scale_u = (std::abs(c.d_alpha) * mu.template cast<double>().replicate(1, x.cols()).array().abs() +
                                            std::abs(0.5 * dV / V) * centered.array().abs() + 1e-3).matrix();
            CHECK(max_relative(u, u_exact, scale_u) <= tol);
            CHECK(max_relative(s, s_exact, Matrix<double>((s_exact.array().abs() + 1e-3).matrix())) <= tol);
            CHECK(max_relative(x1, x1_exact, Matrix<double>((x1_exact.array().abs() + centered.array().abs() + 1e-3).matrix())) <= tol);
            for (Eigen::Index j = 0; j < x.cols(); ++j) {
                const double lp = -1.5 * std::log(2 * std::numbers::pi * V) - centered.col(j).squaredNorm() / (2 * V);
                CHECK(std::abs(static_cast<double>(logp(j)) - lp) <= tol * (std::abs(lp) + 1));
                CHECK(std::abs(static_cast<double>(div(j)) - 1.5 * dV / V) <= tol * (std::abs(1.5 * dV / V) + 1));
            }
        }
    };
    check(fmd::GaussianPath<sch::Linear>{}, "linear");
    check(fmd::GaussianPath<sch::Cosine>{}, "cosine");
    check(fmd::GaussianPath<sch::VP>(sch::VP{}), "VP");
}

TEST_CASE("MixtureOracle fields are finite at t = 1 for schedules with an infinite beta-dot there", "[field][oracle]") {
    // theory.md §8.1: the mixture fields are "singular at t = 1 only if some s_k = 0"; and
    // theory.md §4.2/§5.3: for VP and Sqrt β_1 = 0 while β̇_1 = −∞, yet β β̇ stays finite
    // (VP: ββ̇ = −½ b α² → −½ β_min, since VP::b(1) = β_min; Sqrt: ββ̇ ≡ −½), and so does
    // βD = α̇β² − αββ̇ (→ ½β_min and ½, table of §5.3).
    // The product β·β̇ would be 0·(−∞) = NaN there; the schedules supply ββ̇ directly, and Heun/RK4
    // evaluate at t = 1 (theory.md §7.3), so this must hold.
    const auto mix = fmd_test::three_component_mixture<double>();
    fmd::MixtureOracle vp(fmd::GaussianPath<sch::VP>(sch::VP{}), mix);
    fmd::MixtureOracle sqrt_oracle(fmd::GaussianPath<sch::Sqrt>{}, mix);
    fmd::MixtureOracle lin(fmd::GaussianPath<sch::Linear>{}, mix);
    Matrix<double> x(2, 4), u(2, 4);
    x << 0.1, -1.0, 2.0, 0.5,  //
        0.3, 1.2, -0.7, 0.0;
    lin.velocity(x, 1.0, u);
    CHECK(u.allFinite());  // linear: β̇_1 = −1 is finite
    // With every s_k > 0, u_1(x) = Σ_k w_k [α̇_1 μ_k + (α̇_1/α_1)(x − α_1 μ_k)] = x for linear.
    CHECK((u - x).norm() < 1e-12);
    vp.velocity(x, 1.0, u);
    CHECK(u.allFinite());
    sqrt_oracle.velocity(x, 1.0, u);
    CHECK(u.allFinite());
    const sch::VP vps{};
    const fmd::GaussianPath<sch::VP> vp_path(vps);
    CHECK(std::isfinite(vp_path.conversion(fmd::Prediction::score, fmd::Prediction::velocity, 1.0).b));
    // βD at t = 1 is ½β_min for VP and ½ for Sqrt (theory.md §5.3).
    CHECK(vp_path.coefficients(1.0).beta_D() == Approx(0.5 * vps.beta_min()).epsilon(1e-12));
    CHECK(fmd::GaussianPath<sch::Sqrt>{}.coefficients(1.0).beta_D() == Approx(0.5).epsilon(1e-12));
    // Just below t = 1 both are finite.
    vp.velocity(x, 1.0 - 1e-9, u);
    CHECK(u.allFinite());
    sqrt_oracle.velocity(x, 1.0 - 1e-9, u);
    CHECK(u.allFinite());
}

TEST_CASE("MixtureOracle rejects bad inputs naming the argument", "[field][oracle][errors]") {
    const auto mix = fmd_test::three_component_mixture<double>();
    fmd::MixtureOracle oracle(fmd::GaussianPath<sch::Linear>{}, mix);
    Matrix<double> x = Matrix<double>::Zero(2, 3), out(2, 3), wrong_rows(3, 3), wrong_cols(2, 4);
    fmd::Row<double> row(3), short_row(2);
    CHECK_THROWS_MATCHES(oracle.velocity(x, -0.1, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.velocity(x, 1.5, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.score(x, std::nan(""), out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.velocity(Matrix<double>::Zero(3, 3), 0.5, wrong_rows), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(oracle.score(x, 0.5, wrong_cols), fmd::error, names("out"));
    CHECK_THROWS_MATCHES(oracle.x1(x, 0.5, wrong_cols), fmd::error, names("out"));
    CHECK_THROWS_MATCHES(oracle.epsilon(x, 0.5, wrong_rows), fmd::error, names("out"));
    CHECK_THROWS_MATCHES(oracle.log_density(x, 0.5, short_row), fmd::error, names("out"));
    CHECK_THROWS_MATCHES(oracle.divergence(x, 0.5, short_row), fmd::error, names("out"));
    CHECK_NOTHROW(oracle.divergence(x, 0.5, row));
    // A point-mass component makes the fields singular at t = 1 (theory.md §8.1, §8.3).
    Matrix<double> mu(2, 2);
    mu << 0, 1, 0, 1;
    fmd::MixtureOracle dirac(fmd::GaussianPath<sch::Linear>{}, fmd::GaussianMixture<double>(mu, Vector<double>::Zero(2), Vector<double>::Ones(2)));
    CHECK_THROWS_MATCHES(dirac.velocity(x, 1.0, out), fmd::error, names("t"));
    CHECK_NOTHROW(dirac.velocity(x, 0.99, out));
}

TEST_CASE("GaussianMixture constructor rejects wrong sizes and invalid parameters", "[field][oracle][errors]") {
    Matrix<double> mu(2, 3);
    mu << 0, 1, 2, 0, 1, 2;
    const Vector<double> ones3 = Vector<double>::Ones(3);
    using GM = fmd::GaussianMixture<double>;
    CHECK_NOTHROW(GM(mu, ones3, ones3));
    CHECK_THROWS_MATCHES(GM(Matrix<double>(2, 0), Vector<double>(0), Vector<double>(0)), fmd::error, names("means"));
    CHECK_THROWS_MATCHES(GM(Matrix<double>(0, 3), ones3, ones3), fmd::error, names("means"));
    CHECK_THROWS_MATCHES(GM(mu, Vector<double>::Ones(2), ones3), fmd::error, names("stds"));
    CHECK_THROWS_MATCHES(GM(mu, ones3, Vector<double>::Ones(4)), fmd::error, names("weights"));
    Vector<double> negative = ones3;
    negative(1) = -0.1;
    CHECK_THROWS_MATCHES(GM(mu, negative, ones3), fmd::error, names("stds"));
    CHECK_THROWS_MATCHES(GM(mu, ones3, negative), fmd::error, names("weights"));
    Vector<double> zero_weight = ones3;
    zero_weight(0) = 0;
    CHECK_THROWS_MATCHES(GM(mu, ones3, zero_weight), fmd::error, names("weights"));
    Vector<double> nan_std = ones3;
    nan_std(2) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_MATCHES(GM(mu, nan_std, ones3), fmd::error, names("stds"));
    Matrix<double> inf_mu = mu;
    inf_mu(0, 0) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_MATCHES(GM(inf_mu, ones3, ones3), fmd::error, names("means"));
    // Weights are normalized (theory.md §8.1 uses π_k summing to 1).
    Vector<double> w(3);
    w << 1, 2, 5;
    CHECK(GM(mu, ones3, w).weights().sum() == Approx(1.0).epsilon(1e-15));
    CHECK(GM(mu, ones3, w).weights()(2) == Approx(0.625).epsilon(1e-15));
}

TEST_CASE("GaussianMixture::sample draws the right component frequencies and moments", "[field][oracle]") {
    // Component k has probability π_k: with well separated components the nearest mean
    // identifies k. n = 20000: the standard error of a frequency is √(π(1−π)/n) ≤ 0.0036,
    // and the 0.02 tolerance is 5.5 standard errors (false-failure probability < 1e-7).
    const auto mix = mixture_1d<double>();  // π = (0.25, 0.75), μ = (−1.5, 2), s = (0.4, 0.9)
    fmd::Rng rng(808);
    Matrix<double> z(1, 20000);
    mix.sample(z, rng);
    const double frac_first = (z.array() < 0.0).cast<double>().mean();
    CHECK(std::abs(frac_first - 0.25) < 0.02);
    const double mean = z.mean();  // 0.25·(−1.5) + 0.75·2 = 1.125; sd of z ≈ 1.65, SE ≈ 0.012
    CHECK(std::abs(mean - 1.125) < 0.06);
    CHECK_THROWS_MATCHES(mix.sample(Matrix<double>(2, 5), rng), fmd::error, names("out"));
}

// =============================================================================================
// EmpiricalOracle

TEMPLATE_TEST_CASE("EmpiricalOracle with one data point is the conditional field", "[field][oracle]", float, double) {
    // theory.md §8.3 with M = 1: w = 1, x̂1 = z, and u_t(x) = (β̇/β) x + (D/β) z is the
    // conditional field of theory.md §3.3 — for the linear schedule (z − x)/(1 − t).
    using S = TestType;
    const double tol = Precision<S>::exact_tol;
    Matrix<S> z(2, 1);
    z << 1.25, -0.5;
    fmd::Rng rng(909);
    {
        fmd::EmpiricalOracle<fmd::GaussianPath<sch::Linear>, S> oracle(fmd::GaussianPath<sch::Linear>{}, z);
        for (double t : {0.0, 0.3, 0.7, 0.95}) {
            Matrix<S> x(2, 8), u(2, 8), x1(2, 8), s(2, 8);
            fmd::fill_normal(x, rng);
            oracle.velocity(x, t, u);
            oracle.x1(x, t, x1);
            oracle.score(x, t, s);
            const Matrix<S> zz = z.replicate(1, 8);
            INFO("linear, t = " << t);
            const Matrix<S> expected_u = (zz - x) / S(1 - t);
            CHECK(max_relative(u, expected_u, Matrix<S>((expected_u.array().abs() + S(1)).matrix())) <= tol);
            CHECK(max_relative(x1, zz, Matrix<S>::Ones(2, 8)) <= tol);
            const Matrix<S> expected_s = (S(t) * zz - x) / S((1 - t) * (1 - t));  // theory.md §3.4
            CHECK(max_relative(s, expected_s, Matrix<S>((expected_s.array().abs() + S(1)).matrix())) <= tol);
        }
    }
    {
        const fmd::GaussianPath<sch::Cosine> path;
        fmd::EmpiricalOracle oracle(path, z);
        for (double t : {0.1, 0.5, 0.9}) {
            Matrix<S> x(2, 8), u(2, 8), expected(2, 8);
            fmd::fill_normal(x, rng);
            oracle.velocity(x, t, u);
            path.conditional_velocity_at(x, Matrix<S>(z.replicate(1, 8)), t, expected);
            INFO("cosine, t = " << t);
            CHECK(max_relative(u, expected, Matrix<S>((expected.array().abs() + x.array().abs() + S(1)).matrix())) <= tol);
        }
    }
}

TEMPLATE_TEST_CASE("EmpiricalOracle equals MixtureOracle with zero-width components", "[field][oracle]", float, double) {
    // theory.md §8.3 is §8.1 with s_k = 0 and equal weights: both oracles must give the same
    // velocity, score and x̂1 wherever β_t > 0.
    using S = TestType;
    const double tol = 10 * Precision<S>::exact_tol;
    Matrix<S> data(2, 5);
    data << -1.0, 0.5, 2.0, 0.0, -2.5,  //
        1.0, -0.5, 1.5, -2.0, 0.25;
    const fmd::GaussianPath<sch::Cosine> path;
    fmd::EmpiricalOracle empirical(path, data);
    fmd::MixtureOracle mixture(path, fmd::GaussianMixture<S>(data, Vector<S>::Zero(5), Vector<S>::Ones(5)));
    fmd::Rng rng(1010);
    for (double t : {0.0, 0.2, 0.6, 0.9, 0.99}) {
        Matrix<S> x(2, 16), a(2, 16), b(2, 16);
        fmd::fill_normal(x, rng);
        INFO("t = " << t);
        empirical.velocity(x, t, a);
        mixture.velocity(x, t, b);
        CHECK(max_relative(a, b, Matrix<S>((b.array().abs() + x.array().abs() + S(1)).matrix())) <= tol);
        empirical.score(x, t, a);
        mixture.score(x, t, b);
        CHECK(max_relative(a, b, Matrix<S>((b.array().abs() + x.array().abs() + S(1)).matrix())) <= tol);
        empirical.x1(x, t, a);
        mixture.x1(x, t, b);
        CHECK(max_relative(a, b, Matrix<S>((b.array().abs() + S(1)).matrix())) <= tol);
    }
    // The memorizing field: near t = 1 x̂1 snaps onto a training point (theory.md §8.3).
    Matrix<S> x(2, 1), x1(2, 1);
    x << S(0.99 * 2.0 + 0.01 * 0.3), S(0.99 * 1.5 - 0.01 * 0.7);
    empirical.x1(x, 0.99, x1);
    CHECK((x1 - data.col(2)).norm() < S(1e-4));
}

TEST_CASE("EmpiricalOracle rejects t = 1 and bad shapes naming the argument", "[field][oracle][errors]") {
    Matrix<double> data(2, 3);
    data << 0, 1, 2, 0, 1, 2;
    fmd::EmpiricalOracle oracle(fmd::GaussianPath<sch::Linear>{}, data);
    Matrix<double> x = Matrix<double>::Zero(2, 4), out(2, 4);
    CHECK_THROWS_MATCHES(oracle.velocity(x, 1.0, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.score(x, 1.0, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.x1(x, 1.0, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.velocity(x, -0.5, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(oracle.velocity(Matrix<double>::Zero(3, 4), 0.5, out), fmd::error, names("x"));
    Matrix<double> wrong(2, 5);
    CHECK_THROWS_MATCHES(oracle.velocity(x, 0.5, wrong), fmd::error, names("out"));
    using Oracle = fmd::EmpiricalOracle<fmd::GaussianPath<sch::Linear>, double>;
    CHECK_THROWS_MATCHES(Oracle(fmd::GaussianPath<sch::Linear>{}, Matrix<double>(2, 0)), fmd::error, names("data"));
    CHECK_NOTHROW(oracle.velocity(x, 1.0 - 1e-6, out));
}

// =============================================================================================
// Adapters

TEMPLATE_TEST_CASE("score_to_velocity and velocity_to_score reproduce the oracle fields", "[field][adapters]", float, double) {
    // theory.md §5.2: u = (α̇/α) x + (βD/α) s and s = (α u − α̇ x)/(βD), wrapped as fields.
    using S = TestType;
    const double tol = 10 * Precision<S>::exact_tol;
    fmd::Rng rng(1111);
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        auto u_field = oracle.velocity_field();
        auto s_field = oracle.score_field();
        auto u_from_s = fmd::score_to_velocity(path, s_field);
        auto s_from_u = fmd::velocity_to_score(path, u_field);
        static_assert(fmd::VectorField<decltype(u_from_s), S>);
        static_assert(fmd::ScoreField<decltype(s_from_u), S>);
        for (double t : {0.1, 0.4, 0.7, 0.95}) {
            const Matrix<S> x = points(path, mix, t, 10, rng);
            const auto d = x.rows(), n = x.cols();
            Matrix<S> u(d, n), s(d, n), u2(d, n), s2(d, n);
            oracle.velocity(x, t, u);
            oracle.score(x, t, s);
            u_from_s(fmd::In<S>(x), t, fmd::Out<S>(u2));
            s_from_u(fmd::In<S>(x), t, fmd::Out<S>(s2));
            const auto su = path.conversion(fmd::Prediction::score, fmd::Prediction::velocity, t);
            const auto us = path.conversion(fmd::Prediction::velocity, fmd::Prediction::score, t);
            INFO(label << ", t = " << t);
            CHECK(max_relative(u2, u, Matrix<S>((std::abs(su.a) * x.array().abs() + std::abs(su.b) * s.array().abs() + S(1e-3)).matrix())) <= tol);
            CHECK(max_relative(s2, s, Matrix<S>((std::abs(us.a) * x.array().abs() + std::abs(us.b) * u.array().abs() + S(1e-3)).matrix())) <= tol);
        }
    });
}

TEMPLATE_TEST_CASE("SdeDrift and SdeDriftFromScore equal u + sigma^2/2 s", "[field][adapters]", float, double) {
    // theory.md §3.7, §7.6: drift b = u + (σ²/2) s, the score converted from u (SdeDrift, one
    // NFE) or taken from a score field (SdeDriftFromScore, two NFE).
    using S = TestType;
    const double tol = 10 * Precision<S>::exact_tol;
    fmd::Rng rng(1212);
    for_each_setup<S>([&](const auto& path, const auto& mix, const std::string& label) {
        fmd::MixtureOracle oracle(path, mix);
        auto u_field = oracle.velocity_field();
        auto s_field = oracle.score_field();
        for (double sigma : {0.0, 0.5, 1.3}) {
            fmd::SdeDrift drift(path, u_field, fmd::ConstantSigma(sigma));
            fmd::SdeDriftFromScore<S, decltype(u_field), decltype(s_field), fmd::ConstantSigma> drift2(u_field, s_field, fmd::ConstantSigma(sigma));
            static_assert(fmd::VectorField<decltype(drift), S>);
            static_assert(fmd::VectorField<decltype(drift2), S>);
            CHECK(drift.sigma()(0.3) == sigma);
            for (double t : {0.05, 0.4, 0.8, 0.95}) {
                const Matrix<S> x = points(path, mix, t, 10, rng);
                const auto d = x.rows(), n = x.cols();
                Matrix<S> u(d, n), s(d, n), b(d, n), b2(d, n);
                oracle.velocity(x, t, u);
                oracle.score(x, t, s);
                drift(fmd::In<S>(x), t, fmd::Out<S>(b));
                drift2(fmd::In<S>(x), t, fmd::Out<S>(b2));
                const Matrix<S> expected = u + S(0.5 * sigma * sigma) * s;
                const auto us = path.conversion(fmd::Prediction::velocity, fmd::Prediction::score, t);
                const double hv = 0.5 * sigma * sigma;
                const Matrix<S> scale = (u.array().abs() + S(hv * std::abs(us.a)) * x.array().abs() +
                                         S(hv * std::abs(us.b)) * u.array().abs() + S(1e-3))
                                            .matrix();
                INFO(label << ", sigma = " << sigma << ", t = " << t);
                CHECK(max_relative(b, expected, scale) <= tol);
                CHECK(max_relative(b2, expected, scale) <= tol);
            }
        }
    });
}

TEST_CASE("Adapters reject bad inputs naming the argument", "[field][adapters][errors]") {
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, fmd_test::three_component_mixture<double>());
    auto u = oracle.velocity_field();
    auto s = oracle.score_field();
    auto u_from_s = fmd::score_to_velocity(path, s);
    auto s_from_u = fmd::velocity_to_score(path, u);
    fmd::SdeDrift drift(path, u, fmd::ConstantSigma(0.5));
    Matrix<double> x = Matrix<double>::Zero(2, 4), out(2, 4), wrong_cols(2, 3);
    const Matrix<double> wrong_rows = Matrix<double>::Zero(3, 4);
    Matrix<double> out3(3, 4);
    auto call = [](auto& f, const Matrix<double>& in, double t, Matrix<double>& o) { f(fmd::In<double>(in), t, fmd::Out<double>(o)); };
    // t outside [0, 1]
    CHECK_THROWS_MATCHES(call(u_from_s, x, 1.5, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(call(s_from_u, x, -0.5, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(call(drift, x, 2.0, out), fmd::error, names("t"));
    // singular points of the conversion (theory.md §5.3): α = 0 for s → u, βD = 0 for u → s
    CHECK_THROWS_MATCHES(call(u_from_s, x, 0.0, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(call(s_from_u, x, 1.0, out), fmd::error, names("t"));
    CHECK_THROWS_MATCHES(call(drift, x, 1.0, out), fmd::error, names("t"));
    // wrong rows and shape mismatches
    CHECK_THROWS_MATCHES(call(u_from_s, wrong_rows, 0.5, out3), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(call(drift, wrong_rows, 0.5, out3), fmd::error, names("x"));
    CHECK_THROWS_MATCHES(call(s_from_u, x, 0.5, wrong_cols), fmd::error, names("out"));
    CHECK_THROWS_MATCHES(call(drift, x, 0.5, wrong_cols), fmd::error, names("out"));
    // conversions of whole batches check shapes too
    CHECK_THROWS_MATCHES(path.convert(fmd::Prediction::velocity, fmd::Prediction::score, x, wrong_cols, 0.5, out), fmd::error, names("in"));
    CHECK_THROWS_MATCHES(path.convert(fmd::Prediction::velocity, fmd::Prediction::score, x, x, 0.5, wrong_cols), fmd::error, names("out"));
    // σ must be finite and >= 0 (theory.md §2.4)
    CHECK_THROWS_MATCHES(fmd::ConstantSigma(-1.0), fmd::error, names("sigma"));
    CHECK_THROWS_MATCHES(fmd::ConstantSigma(std::numeric_limits<double>::infinity()), fmd::error, names("sigma"));
    CHECK_THROWS_MATCHES(fmd::ConstantSigma(std::nan("")), fmd::error, names("sigma"));
    CHECK_NOTHROW(fmd::ConstantSigma(0.0));
}

// Types the library did not write, built from docs/concepts.md alone, through the public API end
// to end: a network with its own backward pass, an optimizer with checkpointable state, a data
// source, a time sampler, a schedule, a loss weighting, a path, and ODE, SDE and adaptive
// steppers, plus gradient / average / learning-rate policies and an early-stopping callback.
// Each gets a numeric assertion: a closed-form optimum, a bit-for-bit twin of a library type, an
// exact solution.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <utility>
#include <vector>

#include <Eigen/Cholesky>
#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd::In;
using fmd::Matrix;
using fmd::Out;
using fmd::Row;
using fmd::RowIn;
using fmd::Vector;
using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;

// ---------------------------------------------------------------------------------------------
// A network u(x, t) = A x + b: affine in x, time-independent, hand-written backward.
struct AffineNet {
    using Scalar = double;
    Eigen::Index d;
    Vector<double> theta, grad;  // [A column-major (d x d), b (d)]
    Matrix<double> x_cache;

    explicit AffineNet(Eigen::Index dim) : d(dim), theta(Vector<double>::Zero(dim * dim + dim)), grad(Vector<double>::Zero(dim * dim + dim)) {}
    Eigen::Index input_dim() const { return d; }
    Eigen::Index parameter_count() const { return theta.size(); }
    Eigen::Map<Vector<double>> parameters() { return {theta.data(), theta.size()}; }
    Eigen::Map<Vector<double>> gradients() { return {grad.data(), grad.size()}; }
    Eigen::Map<const Matrix<double>> A() const { return {theta.data(), d, d}; }
    Eigen::Map<const Vector<double>> b() const { return {theta.data() + d * d, d}; }

    void forward(In<double> x, const RowIn<double>&, Out<double> out) {
        x_cache = x;
        out = A() * x;
        out.colwise() += b();
    }
    void backward(In<double> g) {
        Eigen::Map<Matrix<double>>(grad.data(), d, d) = g * x_cache.transpose();
        grad.tail(d) = g.rowwise().sum();
    }
    void operator()(In<double> x, double, Out<double> out) {
        out = A() * x;
        out.colwise() += b();
    }
};

// Plain SGD with momentum, checkpointable through fmd::nn::OptimizerState.
struct MomentumSgd {
    double rate = 0.05, mu = 0.5;
    fmd::nn::OptimizerState<double> st;
    explicit MomentumSgd(Eigen::Index n) { st.buffers = {Vector<double>::Zero(n)}; }
    void step(Eigen::Ref<Vector<double>> p, const Eigen::Ref<const Vector<double>>& g) {
        st.buffers[0] = mu * st.buffers[0] + g;
        p -= rate * st.buffers[0];
        ++st.step;
    }
    void set_lr(double lr) { rate = lr; }
    double lr() const { return rate; }
    const fmd::nn::OptimizerState<double>& state() const { return st; }
    void set_state(const fmd::nn::OptimizerState<double>& s) { st = s; }
};

// z ~ N(μ, s² I) in 2-D.
struct GaussianData {
    Vector<double> mu;
    double s = 0.5;
    GaussianData() : mu(2) { mu << 1.5, -0.5; }
    void sample(Matrix<double>& out, fmd::Rng& rng) const {
        fmd::fill_normal(out, rng);
        out = (s * out).colwise() + mu;
    }
};

// t ~ U[0, 1] by inversion of a different generator use: t = 1 − u (same law as the library's).
struct ReflectedUniform {
    void operator()(Row<double>& t, fmd::Rng& rng) const {
        for (Eigen::Index j = 0; j < t.cols(); ++j) t(j) = 1.0 - fmd::uniform01(rng);
    }
};

// lr_k = 0.1 / (1 + k / 200).
struct Harmonic {
    double lr(std::int64_t step) const { return 0.1 / (1.0 + static_cast<double>(step) / 200.0); }
};

// Stops training once the loss EMA falls below a threshold.
struct StopBelow {
    double threshold, ema = 0;
    std::int64_t stopped_at = -1;
    template <class Trainer, class G>
    fmd::train::Signal on_step(const fmd::train::StepInfo& s, Trainer&, G&) {
        ema = s.step == 1 ? s.loss : 0.9 * ema + 0.1 * s.loss;
        CHECK(std::isfinite(s.grad_norm));
        if (ema < threshold) {
            stopped_at = s.step;
            return fmd::train::Signal::stop;
        }
        return fmd::train::Signal::proceed;
    }
};

/// The least-squares optimum of E‖A x_t + b − (z − ε)‖² over t ~ U[0, 1] for z ~ N(μ, s² I),
/// x_t = t z + (1 − t) ε: normal equations with E[x xᵀ] = (s²I + μμᵀ + I)/3, E[x] = μ/2,
/// E[x uᵀ] = (s²I + μμᵀ − I)/2, E[u] = μ.
Matrix<double> affine_optimum(const GaussianData& data) {
    const Eigen::Index d = data.mu.size();
    const Matrix<double> I = Matrix<double>::Identity(d, d);
    const Matrix<double> second = data.s * data.s * I + data.mu * data.mu.transpose();
    Matrix<double> M(d + 1, d + 1), C(d + 1, d);
    M.topLeftCorner(d, d) = (second + I) / 3.0;
    M.topRightCorner(d, 1) = data.mu / 2.0;
    M.bottomLeftCorner(1, d) = data.mu.transpose() / 2.0;
    M(d, d) = 1.0;
    C.topRows(d) = (second - I) / 2.0;
    C.bottomRows(1) = data.mu.transpose();
    return M.ldlt().solve(C);  // [Aᵀ; bᵀ]
}

}  // namespace

static_assert(fmd::nn::Network<AffineNet, double>);
static_assert(fmd::nn::StatefulOptimizer<MomentumSgd, double>);
static_assert(fmd::train::DataSource<GaussianData, double>);
static_assert(fmd::time_sampler::TimeSampler<ReflectedUniform, double>);
static_assert(fmd::nn::LrSchedule<Harmonic>);

TEST_CASE("Foreign network + optimizer + data + time sampler + LR schedule: the affine net learns the closed-form optimum", "[concepts][train]") {
    const GaussianData data;
    AffineNet net(2);
    MomentumSgd opt(net.parameter_count());
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 256}, ReflectedUniform{});
    trainer.set_lr_schedule(Harmonic{});
    fmd::Rng rng(1);
    fmd::train::fit(trainer, data, rng, 3000);
    const Matrix<double> opt_theta = affine_optimum(data);
    INFO("learned A\n" << net.A() << "\noptimum A\n" << opt_theta.topRows(2).transpose());
    CHECK((net.A() - opt_theta.topRows(2).transpose()).cwiseAbs().maxCoeff() < 0.03);
    CHECK((net.b() - opt_theta.bottomRows(1).transpose()).cwiseAbs().maxCoeff() < 0.03);
    CHECK(opt.lr() == Approx(Harmonic{}.lr(2999)));

    SECTION("checkpoint and resume through the foreign optimizer: bit-identical") {
        AffineNet a(2), b(2);
        MomentumSgd oa(a.parameter_count()), ob(b.parameter_count());
        fmd::train::Trainer ta(LinearPath{}, fmd::loss::cfm, a, oa, {.batch_size = 32, .ema_decay = 0.5});
        fmd::train::Trainer tb(LinearPath{}, fmd::loss::cfm, b, ob, {.batch_size = 32, .ema_decay = 0.5});
        fmd::Rng ra(7), rb(123);
        fmd::train::fit(ta, data, ra, 40);
        const auto c = fmd::train::parse_checkpoint<double>(fmd::train::serialize_checkpoint(ta.checkpoint(ra)));
        CHECK(c.optimizer.empty());  // no describe(): not recorded, not compared
        tb.restore(c, rb);
        fmd::train::fit(ta, data, ra, 80);
        fmd::train::fit(tb, data, rb, 80);
        CHECK(a.theta == b.theta);
        CHECK(ta.ema() == tb.ema());
        CHECK(oa.st.buffers[0] == ob.st.buffers[0]);
    }
}

TEST_CASE("Foreign policies: gradient policy, average policy and an early-stopping callback", "[concepts][train]") {
    const GaussianData data;
    AffineNet net(2);
    MomentumSgd opt(net.parameter_count());
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 64});
    long clipped = 0;
    double last_seen_norm = 0;
    trainer.set_gradient_policy([&](Eigen::Ref<Vector<double>> g) {  // sign-SGD-like: unit max-norm
        const double norm = g.norm();
        last_seen_norm = norm;
        const double m = g.cwiseAbs().maxCoeff();
        if (m > 1.0) {
            g /= m;
            ++clipped;
        }
        return norm;
    });
    std::vector<std::int64_t> average_steps;
    trainer.set_average_policy([&](Eigen::Ref<Vector<double>> avg, const Eigen::Ref<const Vector<double>>& p, std::int64_t step) {
        average_steps.push_back(step);
        avg += (p - avg) / static_cast<double>(step + 1);  // running mean of the initial and every later iterate
    });
    StopBelow stop{0.9};
    fmd::Rng rng(3);
    const std::int64_t taken = fmd::train::fit(trainer, data, rng, 5000, stop);
    REQUIRE(stop.stopped_at > 0);
    CHECK(taken == stop.stopped_at);
    CHECK(trainer.step() == stop.stopped_at);
    CHECK(trainer.last_grad_norm() == last_seen_norm);
    CHECK(clipped > 0);
    REQUIRE(average_steps.size() == static_cast<std::size_t>(taken));
    CHECK(average_steps.front() == 1);
    CHECK(average_steps.back() == taken);
    CHECK(trainer.ema().size() == net.parameter_count());
}

// ---------------------------------------------------------------------------------------------
// A schedule written from the concept: identical to the library's linear one, bit for bit.
struct MyLinear {
    double alpha(double t) const { return t; }
    double beta(double t) const { return 1.0 - t; }
    double d_alpha(double) const { return 1.0; }
    double d_beta(double) const { return -1.0; }
};
static_assert(fmd::schedule::Schedule<MyLinear>);

TEST_CASE("Foreign schedule: samples, targets and conversions equal schedule::Linear bit for bit", "[concepts][schedule]") {
    const fmd::GaussianPath<MyLinear> mine;
    const LinearPath lib;
    fmd::Rng rng(2);
    const Matrix<double> z = fmd_test::normal<double>(2, 50, rng), eps = fmd_test::normal<double>(2, 50, rng);
    Row<double> t(50);
    fmd::time_sampler::Uniform{}(t, rng);
    Matrix<double> a(2, 50), b(2, 50), ua(2, 50), ub(2, 50);
    mine.sample(z, eps, t, a, ua, rng);
    lib.sample(z, eps, t, b, ub, rng);
    CHECK(a == b);
    CHECK(ua == ub);
    for (const double tt : {0.1, 0.5, 0.9}) {
        const auto m1 = mine.conversion(fmd::Prediction::epsilon, fmd::Prediction::velocity, tt);
        const auto m2 = lib.conversion(fmd::Prediction::epsilon, fmd::Prediction::velocity, tt);
        CHECK(m1.a == m2.a);
        CHECK(m1.b == m2.b);
    }
}

// ---------------------------------------------------------------------------------------------
// A loss weighting written from the concept: λ(t) = 1 + t.
struct OnePlusT {
    template <class Path>
    double operator()(const Path&, double t) const { return 1.0 + t; }
};
static_assert(fmd::loss::Weighting<OnePlusT, LinearPath>);

TEST_CASE("Foreign loss weighting: value = (1/N) Σ (1 + t_j) ‖r_j‖²/d, gradient by finite differences", "[concepts][loss]") {
    const LinearPath path;
    fmd::Rng rng(4);
    const Matrix<double> z = fmd_test::normal<double>(3, 20, rng), eps = fmd_test::normal<double>(3, 20, rng);
    Matrix<double> pred = fmd_test::normal<double>(3, 20, rng), grad(3, 20);
    Row<double> t(20);
    fmd::time_sampler::Uniform{}(t, rng);
    const auto objective = fmd::loss::weighted(fmd::loss::cfm, OnePlusT{});
    const double v = fmd::loss::value_and_gradient(objective, path, pred, z, eps, t, grad);
    double hand = 0;
    for (Eigen::Index j = 0; j < 20; ++j) hand += (1.0 + t(j)) * (pred.col(j) - (z.col(j) - eps.col(j))).squaredNorm() / 3.0;
    CHECK(v == Approx(hand / 20.0).epsilon(1e-12));
    CHECK(fmd::loss::value(objective, path, pred, z, eps, t) == Approx(v).epsilon(1e-12));
    for (const auto& [i, j] : {std::pair{0, 0}, std::pair{2, 7}, std::pair{1, 19}}) {
        Matrix<double> p = pred, m = pred;
        p(i, j) += 1e-6;
        m(i, j) -= 1e-6;
        const double fd = (fmd::loss::value(objective, path, p, z, eps, t) - fmd::loss::value(objective, path, m, z, eps, t)) / 2e-6;
        CHECK(grad(i, j) == Approx(fd).epsilon(1e-6));
    }
}

// ---------------------------------------------------------------------------------------------
// A path written from the concept: the σ_min path x_t = t z + (1 − (1 − σ)t) ε (not a GaussianPath
// here: no coefficients(t), so it trains with CFM only).
struct SigmaMinPath {
    double sigma = 0.1;
    template <class Z, class E, class T, class X, class U, class G>
    void sample(const Z& z, const E& eps, const T& t, X&& xt, U&& ut, G&) const {
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            const double tj = t(j);
            xt.col(j) = tj * z.col(j) + (1.0 - (1.0 - sigma) * tj) * eps.col(j);
            ut.col(j) = z.col(j) - (1.0 - sigma) * eps.col(j);
        }
    }
};
static_assert(fmd::ProbabilityPath<SigmaMinPath, double>);
static_assert(!fmd::GaussianProbabilityPath<SigmaMinPath, double>);

TEST_CASE("Foreign path: the trainer's loss is the CFM loss against the path's own velocity; training lowers it", "[concepts][path]") {
    const GaussianData data;
    AffineNet net(2);
    MomentumSgd opt(net.parameter_count());
    fmd::train::Trainer trainer(SigmaMinPath{}, fmd::loss::cfm, net, opt, {.batch_size = 128});
    fmd::Rng rng(5);
    // Replay the trainer's draws: ε then t, then the batch loss against u = z − (1 − σ) ε.
    fmd::Rng replay = rng;
    Matrix<double> z(2, 128);
    data.sample(z, replay);
    const double first = trainer.train_step(data, rng);
    Matrix<double> eps(2, 128);
    fmd::fill_normal(eps, replay);
    Row<double> t(128);
    fmd::time_sampler::Uniform{}(t, replay);
    const Matrix<double> u = z - 0.9 * eps;
    const double expected = (u - Matrix<double>::Zero(2, 128)).squaredNorm() / (2.0 * 128.0);  // the net starts at 0
    CHECK(first == Approx(expected).epsilon(1e-12));
    fmd::train::fit(trainer, data, rng, 600);
    CHECK(trainer.train_step(data, rng) < 0.6 * first);
}

// ---------------------------------------------------------------------------------------------
// Steppers written from the concepts.
struct MyEuler {
    using Scalar = double;
    static constexpr int order = 1;
    static constexpr int nfe_per_step = 1;
    Matrix<double> k;
    template <class F>
    void step(F&& u, Out<double> x, double t, double h) {
        k.resize(x.rows(), x.cols());
        u(In<double>(x), t, Out<double>(k));
        x += h * k;
    }
};
struct MyEulerMaruyama {
    using Scalar = double;
    static constexpr int nfe_per_step = 1;
    double s;
    Matrix<double> k;
    double sigma(double) const { return s; }
    template <class F, class G>
    void step(F&& b, Out<double> x, double t, double h, G& rng) {
        k.resize(x.rows(), x.cols());
        b(In<double>(x), t, Out<double>(k));
        x += h * k;
        fmd::fill_normal(k, rng);
        x += (s * std::sqrt(h)) * k;
    }
};
// Heun–Euler 2(1) with elementary step-size control: the adaptive kind.
struct HeunEuler {
    using Scalar = double;
    static constexpr int order = 2;
    double tol = 1e-7;
    template <class F, class Obs>
    fmd::SolveStats integrate(F&& u, Matrix<double>& x, const std::vector<double>& times, Obs&& observer) {
        fmd::SolveStats st;
        Matrix<double> k1(x.rows(), x.cols()), k2(x.rows(), x.cols()), y(x.rows(), x.cols());
        double t = times.front(), h = (times.back() - times.front()) / 100;
        observer(t, std::as_const(x));
        for (std::size_t next = 1; next < times.size(); ++next) {
            while (t != times[next]) {
                const double step = std::abs(h) >= std::abs(times[next] - t) ? times[next] - t : h;
                u(In<double>(x), t, Out<double>(k1));
                y = x + step * k1;
                u(In<double>(y), t + step, Out<double>(k2));
                st.nfe += 2;
                const double err = (0.5 * step * (k2 - k1)).cwiseAbs().maxCoeff();
                if (err <= tol) {
                    x += 0.5 * step * (k1 + k2);
                    t = step == times[next] - t ? times[next] : t + step;
                    ++st.steps;
                } else {
                    ++st.rejected;
                }
                h = step * std::clamp(0.9 * std::sqrt(tol / std::max(err, 1e-300)), 0.2, 5.0);
            }
            observer(t, std::as_const(x));
        }
        return st;
    }
};
static_assert(fmd::solver::OdeStepper<MyEuler>);
static_assert(fmd::solver::SdeStepper<MyEulerMaruyama>);
static_assert(fmd::solver::AdaptiveStepper<HeunEuler>);

TEST_CASE("Foreign ODE and SDE steppers equal solver::Euler / EulerMaruyama bit for bit through fmd::sample", "[concepts][solver]") {
    const LinearPath path;
    fmd::MixtureOracle oracle(path, fmd_test::three_component_mixture());
    auto u = oracle.velocity_field();
    fmd::Rng rng(6);
    const Matrix<double> x0 = fmd_test::normal<double>(2, 40, rng);
    Matrix<double> a = x0, b = x0;
    MyEuler mine;
    fmd::solver::Euler<double> lib;
    const auto sa = fmd::sample(u, a, fmd::grid::uniform(25), mine);
    const auto sb = fmd::sample(u, b, fmd::grid::uniform(25), lib);
    CHECK(a == b);
    CHECK(sa.nfe == sb.nfe);

    MyEulerMaruyama my_em{0.7, {}};
    fmd::solver::EulerMaruyama<double> em(fmd::ConstantSigma(0.7));
    fmd::Rng r1(9), r2(9);
    a = x0;
    b = x0;
    const auto grid = fmd::grid::uniform(30, 0.0, 0.95);
    fmd::sample(path, u, a, grid, my_em, r1);
    fmd::sample(path, u, b, grid, em, r2);
    CHECK(a == b);
}

TEST_CASE("Foreign adaptive stepper: integrate and log_likelihood serve it like Dopri5", "[concepts][solver]") {
    // Single Gaussian N(μ, s²I) data, linear path: the exact flow map and likelihood (theory.md §8.2).
    const double s = 0.6;
    Matrix<double> mu(2, 1);
    mu << 1.0, -0.5;
    const fmd::GaussianMixture<double> single(mu, Vector<double>::Constant(1, s), Vector<double>::Ones(1));
    const LinearPath path;
    fmd::MixtureOracle oracle(path, single);
    auto u = oracle.velocity_field();
    fmd::Rng rng(8);
    const Matrix<double> x0 = fmd_test::normal<double>(2, 30, rng);
    Matrix<double> x = x0;
    HeunEuler he;
    std::vector<double> seen;
    const auto stats = fmd::integrate(u, x, {0.0, 0.5, 1.0}, he, [&](double t, const Matrix<double>&) { seen.push_back(t); });
    CHECK(seen == std::vector<double>{0.0, 0.5, 1.0});
    CHECK(stats.nfe == 2 * (stats.steps + stats.rejected));
    const Matrix<double> exact = (s * x0).colwise() + mu.col(0);  // ψ_1(x0) = μ + s x0
    CHECK((x - exact).cwiseAbs().maxCoeff() < 1e-4);
    // Likelihood: log N(x; μ, s²I) exactly.
    const auto like = fmd::log_likelihood(u, exact, he);
    for (Eigen::Index j = 0; j < exact.cols(); ++j) {
        const double r2 = (exact.col(j) - mu.col(0)).squaredNorm();
        const double logp = -std::log(2 * std::numbers::pi * s * s) - r2 / (2 * s * s);
        CHECK(like.log_p(j) == Approx(logp).margin(1e-3));
    }
}

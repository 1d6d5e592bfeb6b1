// StochasticInterpolant, a ProbabilityPath that is not a GaussianPath: its conditional velocity is
// d/dt x_t (finite differences with fixed z, ε, ξ); the trainer trains a network on it end to end
// and the learned field approaches the exact marginal velocity, which is the Gaussian-mixture
// oracle of the equivalent schedule (α, √(β² + γ²)); sampled with Heun it reaches the data.
#include <cmath>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {
using fmd::Matrix;
using fmd::Row;
using Interpolant = fmd::StochasticInterpolant<fmd::schedule::Linear>;
}  // namespace

TEST_CASE("StochasticInterpolant: u_t is d/dt x_t for fixed (z, ε, ξ); γ vanishes at both ends", "[path]") {
    const Interpolant path(fmd::schedule::Linear{}, 1.5);
    fmd::Rng rng(1);
    const Matrix<double> z = fmd_test::normal<double>(3, 8, rng), eps = fmd_test::normal<double>(3, 8, rng);
    Row<double> t(8), tp(8), tm(8);
    t << 0.05, 0.2, 0.35, 0.5, 0.6, 0.75, 0.9, 0.97;
    const double h = 1e-6;
    tp = t.array() + h;
    tm = t.array() - h;
    Matrix<double> x(3, 8), u(3, 8), xp(3, 8), xm(3, 8), scratch(3, 8);
    fmd::Rng r0(7), r1(7), r2(7);  // the same ξ for all three
    path.sample(z, eps, t, x, u, r0);
    path.sample(z, eps, tp, xp, scratch, r1);
    path.sample(z, eps, tm, xm, scratch, r2);
    const Matrix<double> fd = (xp - xm) / (2 * h);
    CHECK((fd - u).cwiseAbs().maxCoeff() < 1e-7);
    CHECK(path.gamma(0.0) == 0.0);
    CHECK(path.gamma(1.0) == 0.0);
    CHECK(path.gamma(0.5) == 1.5 * 0.25);
    // The latent term is really there: x_t differs from the plain interpolant by γ_t ξ with unit-variance ξ.
    const Interpolant plain(fmd::schedule::Linear{}, 0.0);
    Matrix<double> x0(3, 8), u0(3, 8);
    plain.sample(z, eps, t, x0, u0, r0);
    CHECK((x - x0).norm() > 0.1);
    CHECK_THROWS_MATCHES(Interpolant(fmd::schedule::Linear{}, -1.0), fmd::invalid_argument, fmd_test::names("a"));
}

TEST_CASE("StochasticInterpolant: trained end to end, the learned field approaches the exact marginal velocity", "[path][train]") {
    using S = float;
    const auto mix = fmd_test::separated_blobs<S>();
    const Interpolant path(fmd::schedule::Linear{}, 1.0);
    const fmd::GaussianPath<Interpolant::Equivalent> equivalent(path.equivalent_schedule());
    fmd::MixtureOracle oracle(equivalent, mix);

    fmd::nn::MLP<S> net({.dim = 2, .width = 64, .depth = 2}, 11);
    fmd::nn::AdamW<S> opt(net.parameter_count());
    fmd::train::Trainer trainer(path, fmd::loss::cfm, net, opt, {.batch_size = 256});
    const fmd::nn::WarmupCosine schedule{.peak_lr = 3e-3, .warmup_steps = 0, .total_steps = 600, .min_lr = 1.5e-4};
    trainer.set_lr_schedule(schedule);

    // FM error E‖u_θ(x_t, t) − u⋆(x_t, t)‖²/d on held-out interpolant samples at fixed times.
    auto fm_error = [&] {
        fmd::Rng eval(99);
        double err = 0, scale = 0;
        Matrix<S> z(2, 2000), eps(2, 2000), x(2, 2000), u(2, 2000), pred(2, 2000), exact(2, 2000);
        for (const double tt : {0.1, 0.3, 0.5, 0.7, 0.9}) {
            mix.sample(z, eval);
            fmd::fill_normal(eps, eval);
            const Row<S> t = Row<S>::Constant(2000, S(tt));
            path.sample(z, eps, t, x, u, eval);
            net(x, tt, pred);
            oracle.velocity(x, tt, exact);
            err += (pred - exact).template cast<double>().squaredNorm();
            scale += exact.template cast<double>().squaredNorm();
        }
        return err / scale;
    };
    const double before = fm_error();
    fmd::Rng rng(2024);
    fmd::train::fit(trainer, mix, rng, 600);
    const double after = fm_error();
    INFO("relative FM error: untrained " << before << ", trained " << after);
    CHECK(before > 0.5);
    CHECK(after < 0.05);  // measured ~0.01

    // Sampling from N(0, I) with Heun reaches the exact flow of the same noise.
    Matrix<S> noise(2, 2000);
    fmd::fill_normal(noise, rng);
    Matrix<S> learned = noise, exact = noise;
    fmd::solver::Heun<S> heun;
    fmd::sample(net, learned, fmd::grid::uniform(25), heun);
    fmd::sample(oracle.velocity_field(), exact, fmd::grid::uniform(25), heun);
    fmd::Rng proj(5), proj2(5);
    const double to_exact = fmd::metrics::sliced_wasserstein(learned, exact, 200, proj);
    const double noise_to_exact = fmd::metrics::sliced_wasserstein(noise, exact, 200, proj2);
    INFO("sliced W2 to the exact flow: learned " << to_exact << ", noise " << noise_to_exact);
    CHECK(to_exact < 0.3 * noise_to_exact);
}

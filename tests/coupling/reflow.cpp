// Straight paths (theory.md §9.1, §9.2, §9.6): straightness is 0 for straight trajectories and
// positive for a curved field; a net trained with the exact-OT coupling is straighter than one
// trained on independent pairs; reflow pairs of the exact ODE keep the data marginal; pair files
// round-trip and corrupt ones are rejected; the trainer trains on stored pairs and on OT-coupled
// batches exactly as specified (replayed by hand).
#include <cmath>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using fmd::Row;
using fmd_test::names;
using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;

double sw(const Matrix<double>& a, const Matrix<double>& b) {
    fmd::Rng proj(5);
    return fmd::metrics::sliced_wasserstein(a, b, 200, proj);
}

}  // namespace

TEST_CASE("straightness: 0 for a point mass's straight flow, positive for a mixture's curved one", "[coupling][metrics]") {
    const LinearPath path;
    fmd::Rng rng(1);
    const Matrix<double> x0 = fmd_test::normal<double>(2, 500, rng);
    fmd::solver::Euler<double> euler;
    Matrix<double> point(2, 1);
    point << 1.5, -2.0;
    fmd::EmpiricalOracle single(path, point);  // u_t(x) = (z − x)/(1 − t): straight lines to z
    auto u1 = single.velocity_field();
    const auto s1 = fmd::metrics::straightness(u1, x0, fmd::grid::uniform(20), euler);
    CHECK(s1.value < 1e-20);
    CHECK(s1.nfe == 40);
    fmd::MixtureOracle mixture(path, fmd::GaussianMixture<double>::ring(8, 4.0, 0.3));
    auto u2 = mixture.velocity_field();
    const auto s2 = fmd::metrics::straightness(u2, x0, fmd::grid::uniform(100), euler);
    INFO("ring of 8: S = " << s2.value << " ± " << s2.standard_error);
    CHECK(s2.value > 10 * s2.standard_error);
    CHECK(s2.value > 0.5);
}

TEST_CASE("OT-CFM: the exact-OT coupling trains a straighter flow than independent pairs", "[coupling][train]") {
    using S = double;
    const auto ring = fmd::GaussianMixture<S>::ring(8, 4.0, 0.3);
    fmd::Rng noise_rng(7);
    const Matrix<S> x0 = fmd_test::normal<S>(2, 1000, noise_rng);
    fmd::solver::Euler<S> euler;
    auto train = [&](auto coupling) {
        fmd::nn::MLP<S> net({.dim = 2, .width = 48, .depth = 2, .activation = fmd::nn::Activation::silu}, 3);
        fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 3e-3});
        fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 64}, fmd::time_sampler::Uniform{}, coupling);
        fmd::Rng rng(11);
        fmd::train::fit(trainer, ring, rng, 600);
        return fmd::metrics::straightness(net, x0, fmd::grid::uniform(50), euler);
    };
    const auto independent = train(fmd::coupling::Independent{});
    const auto ot = train(fmd::coupling::ExactOT<S>{});
    INFO("straightness: independent " << independent.value << " ± " << independent.standard_error << ", exact OT " << ot.value << " ± "
                                      << ot.standard_error);
    CHECK(ot.value + 3 * (ot.standard_error + independent.standard_error) < independent.value);
    CHECK(ot.value < 0.5 * independent.value);
}

TEST_CASE("Reflow pairs of the exact ODE keep the data marginal (sliced W2 within the sampling floor)", "[coupling][train]") {
    const LinearPath path;
    const auto mix = fmd_test::three_component_mixture();
    fmd::MixtureOracle oracle(path, mix);
    auto u = oracle.velocity_field();
    fmd::solver::RK4<double> rk4;
    fmd::Rng rng(3);
    std::vector<long> progress;
    const auto pairs = fmd::train::generate_pairs(u, rk4, fmd::grid::uniform(100), 3000, 2, rng, 700,
                                                  [&](Eigen::Index done, Eigen::Index total) { progress.push_back(done * 10000 + total); });
    CHECK(pairs.size() == 3000);
    CHECK(progress.back() == 3000L * 10000 + 3000);
    CHECK(progress.size() == 5);  // ⌈3000 / 700⌉ batches
    // The noise side is N(0, I) as drawn; the data side is the mixture: its distance to a fresh draw
    // is within the distance between two fresh draws (times a margin for the estimator's spread).
    Matrix<double> fresh(2, 3000), fresh2(2, 3000);
    mix.sample(fresh, rng);
    mix.sample(fresh2, rng);
    const double floor = sw(fresh, fresh2), reflow = sw(pairs.data, fresh);
    INFO("sliced W2: reflow data side to a fresh draw " << reflow << ", two fresh draws " << floor);
    CHECK(reflow < 2.0 * floor + 0.02);
    CHECK(sw(pairs.noise, fresh) > 5 * floor);
    // Pairs are the ODE map column by column: re-solving the first noise column lands on its partner.
    Matrix<double> x = pairs.noise.col(0);
    fmd::sample(u, x, fmd::grid::uniform(100), rk4);
    CHECK(x == pairs.data.col(0));
}

TEST_CASE("Pair files: round trip, and every corruption is an io_error naming 'path'", "[coupling][train]") {
    fmd_test::TempDir tmp;
    fmd::train::PairSet<float> p;
    fmd::Rng rng(4);
    p.noise = fmd_test::normal<float>(3, 17, rng);
    p.data = fmd_test::normal<float>(3, 17, rng);
    const std::string path = tmp.file("pairs.fmdp");
    fmd::train::save_pairs(path, p);
    const auto back = fmd::train::load_pairs<float>(path);
    CHECK(back.noise == p.noise);
    CHECK(back.data == p.data);
    const auto bytes = fmd_test::read_bytes(path);
    CHECK(bytes.size() == 32 + 2 * (8 + 3 * 17 * 4) + 8);
    const std::string bad = tmp.file("bad.fmdp");
    for (const std::size_t keep : {std::size_t{0}, std::size_t{20}, std::size_t{39}, bytes.size() / 2, bytes.size() - 1}) {
        fmd_test::write_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
        CHECK_THROWS_MATCHES(fmd::train::load_pairs<float>(bad), fmd::io_error, names("path"));
    }
    auto flipped = bytes;
    flipped[100] = static_cast<char>(flipped[100] ^ 4);
    fmd_test::write_bytes(bad, flipped);
    CHECK_THROWS_MATCHES(fmd::train::load_pairs<float>(bad), fmd::io_error, names("path", "checksum"));
    CHECK_THROWS_MATCHES(fmd::train::load_pairs<double>(path), fmd::io_error, names("path", "32-bit scalars"));
    CHECK_THROWS_MATCHES(fmd::train::load_pairs<float>(tmp.file("missing")), fmd::io_error, names("path"));
    p.data(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(fmd::train::save_pairs(path, p), fmd::numerical_error);
    CHECK(fmd::train::load_pairs<float>(path).noise == back.noise);  // the old file is intact
}

TEST_CASE("Trainer on stored pairs and on OT-coupled batches: the step is what the coupling says (replayed)", "[coupling][train]") {
    using S = double;
    fmd::Rng rng(6);
    fmd::train::PairSet<S> pairs;
    pairs.noise = fmd_test::normal<S>(2, 50, rng);
    pairs.data = fmd_test::normal<S>(2, 50, rng);
    pairs.data.array() += 3.0;
    fmd::nn::MLP<S> net({.dim = 2, .width = 16, .depth = 1}, 1);
    fmd::nn::SGD<S> opt(net.parameter_count(), {.lr = 0.0});  // lr 0: the loss is a pure function of the batch
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 8}, fmd::time_sampler::Discrete{4});
    fmd::Rng replay = rng;
    const double loss = trainer.train_step(pairs, rng);
    Matrix<S> z(2, 8), eps(2, 8), xt(2, 8), pred(2, 8);
    pairs.sample(z, eps, replay);
    Row<S> t(8);
    fmd::time_sampler::Discrete{4}(t, replay);
    for (Eigen::Index j = 0; j < 8; ++j) {
        CHECK(t(j) * 4 == std::round(t(j) * 4));
        xt.col(j) = t(j) * z.col(j) + (1 - t(j)) * eps.col(j);
    }
    net.forward(xt, t, pred);
    CHECK(loss == Approx((pred - (z - eps)).squaredNorm() / 16.0).epsilon(1e-12));

    // ExactOT through the trainer: the noise it trains on is the optimal permutation of its draws.
    fmd::train::Trainer ot_trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 32}, fmd::time_sampler::Uniform{},
                                   fmd::coupling::ExactOT<S>{});
    const auto ring = fmd::GaussianMixture<S>::ring(8, 4.0, 0.3);
    fmd::Rng r2(9), r2_replay(9);
    ot_trainer.train_step(ring, r2);
    Matrix<S> zb(2, 32), pool(2, 32);
    ring.sample(zb, r2_replay);
    fmd::fill_normal(pool, r2_replay);
    Matrix<double> cost(32, 32);
    fmd::coupling::detail::squared_distances(pool, zb, cost);
    fmd::coupling::Assignment exact;
    exact.solve(cost);
    CHECK(ot_trainer.coupling().last_cost() == Approx(exact.total_cost(cost)).epsilon(1e-12));
    CHECK(ot_trainer.coupling().last_cost() < (pool - zb).squaredNorm());
}

TEST_CASE("time_sampler::Discrete: the k left grid times, uniformly", "[coupling][time]") {
    fmd::Rng rng(8);
    Row<double> t(40000);
    fmd::time_sampler::Discrete{4}(t, rng);
    for (const double v : {0.0, 0.25, 0.5, 0.75}) {
        const double share = static_cast<double>((t.array() == v).count()) / 40000.0;
        CHECK(share == Approx(0.25).margin(0.01));  // 4.6 standard errors
    }
    CHECK_THROWS_MATCHES(fmd::time_sampler::Discrete{0}, fmd::invalid_argument, names("k"));
}

// What is and is not bit-reproducible across thread counts (documented in train/trainer.hpp):
//  - same seed, same thread count, same batch size: bit-identical parameters, also across a
//    checkpoint and resume, for 1 and for 2 threads;
//  - different thread counts: equal up to floating-point rounding only. Eigen's matrix product
//    picks its cache blocking, and with it the order of each dot product's partial sums, from the
//    number of threads, so a width-512 network trained with 1 and 2 threads differs in the last
//    bits (this test measures that difference and bounds it).
#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include <fmd/core/parallel.hpp>
#include <fmd/fmd.hpp>

namespace {

using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;
const fmd::nn::MLPConfig wide{.dim = 2, .width = 512, .depth = 2};

fmd::GaussianMixture<float> blobs() {
    fmd::Matrix<float> mu(2, 2);
    mu << -2.0f, 2.0f, 0.5f, -0.5f;
    fmd::Vector<float> sd(2), w(2);
    sd << 0.3f, 0.5f;
    w << 1, 1;
    return {mu, sd, w};
}

/// Parameters after `steps` AdamW steps of the wide network with `threads` Eigen threads,
/// optionally through a checkpoint after `resume_at` steps.
fmd::Vector<float> train(int threads, int steps, int resume_at = -1) {
    Eigen::setNbThreads(threads);
    const auto mix = blobs();
    fmd::nn::MLP<float> net(wide, 11);
    fmd::nn::AdamW<float> opt(net.parameter_count(), {.lr = 1e-3});
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 64, .ema_decay = 0.9});
    fmd::Rng rng(5);
    for (int s = 0; s < steps; ++s) {
        if (s == resume_at) {
            const auto c = fmd::train::parse_checkpoint<float>(fmd::train::serialize_checkpoint(trainer.checkpoint(rng)));
            fmd::nn::MLP<float> net2(wide, 99);
            fmd::nn::AdamW<float> opt2(net2.parameter_count(), {.lr = 1e-3});
            fmd::train::Trainer resumed(LinearPath{}, fmd::loss::cfm, net2, opt2, {.batch_size = 64, .ema_decay = 0.9});
            fmd::Rng rng2(0);
            resumed.restore(c, rng2);
            for (int r = s; r < steps; ++r) resumed.train_step(mix, rng2);
            return net2.parameters();
        }
        trainer.train_step(mix, rng);
    }
    return net.parameters();
}

}  // namespace

TEST_CASE("Same thread count: bit-identical runs and resumes; different thread counts: equal up to rounding", "[train][threads]") {
    const int max_threads = Eigen::nbThreads();
    INFO("Eigen threads available: " << max_threads);
    const auto one = train(1, 30), one_again = train(1, 30), one_resumed = train(1, 30, 12);
    CHECK(one == one_again);
    CHECK(one == one_resumed);
    if (max_threads < 2) {
        WARN("one hardware thread: the 2-thread half of this test is skipped");
        return;
    }
    const auto two = train(2, 30), two_again = train(2, 30), two_resumed = train(2, 30, 12);
    CHECK(two == two_again);
    CHECK(two == two_resumed);
    // Across thread counts: close, and (the documented caveat) not promised equal.
    const float rel = (one - two).norm() / one.norm();
    WARN("relative difference of the parameters, 1 vs 2 threads, after 30 steps: " << rel);
    CHECK(rel < 1e-4f);
    Eigen::setNbThreads(max_threads);
}

TEST_CASE("fmd::parallel_for: optimizer updates and activations are bit-identical for 1 and 2 threads", "[threads]") {
    const int max_threads = Eigen::nbThreads();
    // Long enough that parallel_for splits them (optimizers: 64 K elements per thread; activations: 32 K scalars).
    const Eigen::Index n = 400'003;
    fmd::Rng rng(9);
    fmd::Vector<float> p0(n), g(n);
    fmd::fill_normal(p0, rng);
    fmd::fill_normal(g, rng);
    fmd::Matrix<float> z0(512, 300);
    fmd::fill_normal(z0, rng);
    const fmd::Vector<float> bias = z0.col(0);
    auto run = [&](int threads) {
        Eigen::setNbThreads(threads);
        fmd::Vector<float> p = p0;
        fmd::nn::AdamW<float> adamw(n, {.lr = 1e-2, .weight_decay = 0.1});
        fmd::nn::SGD<float> sgd(n, {.lr = 1e-2, .momentum = 0.9, .nesterov = true});
        for (int s = 0; s < 3; ++s) {
            adamw.step(p, g);
            sgd.step(p, g);
        }
        fmd::Matrix<float> a = z0, sig(512, 300), gr = z0;
        fmd::nn::silu_forward<float>(bias, a, sig);
        fmd::nn::silu_backward<float>(a, sig, gr);
        fmd::nn::relu_forward<float>(bias, a);
        fmd::nn::relu_backward<float>(a, gr);
        return std::make_tuple(p, a, gr);
    };
    const auto [p1, a1, g1] = run(1);
    if (max_threads < 2) {
        WARN("one hardware thread: nothing to compare");
        return;
    }
    const auto [p2, a2, g2] = run(2);
    Eigen::setNbThreads(max_threads);
    CHECK(p1 == p2);
    CHECK(a1 == a2);
    CHECK(g1 == g2);
    // And the split covered every element: the update moved all of them, the activations are applied.
    CHECK(((p1 - p0).array() != 0.0f).all());
    CHECK((a1.array() >= 0.0f).all());
}

TEST_CASE("fmd::parallel_sum: every range counted, one thread exactly f(0, n)", "[threads]") {
    const int max_threads = Eigen::nbThreads();
    const Eigen::Index n = 300'001;
    fmd::Vector<float> v = fmd::Vector<float>::LinSpaced(n, -1.0f, 1.0f);
    auto norm2 = [&](Eigen::Index lo, Eigen::Index hi) { return static_cast<double>(v.segment(lo, hi - lo).squaredNorm()); };
    auto bad = [&](Eigen::Index lo, Eigen::Index hi) { return v.segment(lo, hi - lo).allFinite() ? 0.0 : 1.0; };
    Eigen::setNbThreads(1);
    const double one = fmd::parallel_sum(n, 1 << 16, norm2);
    CHECK(one == static_cast<double>(v.squaredNorm()));
    Eigen::setNbThreads(std::max(2, max_threads));
    const double two = fmd::parallel_sum(n, 1 << 16, norm2);
    CHECK(std::abs(two - one) < 1e-5 * one);
    // A NaN in the last element (the second thread's range) is seen: the trainer's finite check.
    CHECK(fmd::parallel_sum(n, 1 << 16, bad) == 0.0);
    v(n - 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK(fmd::parallel_sum(n, 1 << 16, bad) == 1.0);
    v(n - 1) = 1.0f;
    v(0) = std::numeric_limits<float>::infinity();
    CHECK(fmd::parallel_sum(n, 1 << 16, bad) == 1.0);
    Eigen::setNbThreads(max_threads);
}

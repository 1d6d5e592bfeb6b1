// What is and is not bit-reproducible across thread counts (documented in train/trainer.hpp):
//  - same seed, same thread count, same batch size: bit-identical parameters, also across a
//    checkpoint and resume, for 1 and for 2 threads;
//  - different thread counts: equal up to floating-point rounding only. Eigen's matrix product
//    picks its cache blocking, and with it the order of each dot product's partial sums, from the
//    number of threads, so a width-512 network trained with 1 and 2 threads differs in the last
//    bits (this test measures that difference and bounds it).
#include <Eigen/Core>
#include <catch2/catch.hpp>

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

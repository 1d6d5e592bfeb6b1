// bfloat16 sampling (nn::FrozenMLP, fmd/nn/dnnl.hpp): speed and accuracy on the seed checkerboard.
//
//   bf16_sampling [--steps 4000] [--batch 256] [--lr 5e-4] [--samples 20000] [--euler 100] [--threads 1]
//
// Trains the notebook MLP (width 512, depth 5) with CFM on the linear path, then samples the same
// noise three ways with Euler (theory.md §7.1): the MLP itself (nn::gemm), its oneDNN snapshot in
// float32 and in bfloat16. Prints the filled-square fraction of each with its standard error, the
// paired difference bf16 − f32 with its standard error (same noise: only discordant points count),
// and the time of one Euler step on 1000 points (median of 7 batches) for each.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <Eigen/Core>

#include <fmd/fmd.hpp>
#include <fmd/nn/dnnl.hpp>
#include <fmd/nn/nn.hpp>
#include <fmd/train/train.hpp>

#include "common/cli.hpp"

using S = float;
using Clock = std::chrono::steady_clock;

namespace {

template <class F>
double median_ms(F&& f, int iters) {
    for (int i = 0; i < 5; ++i) f();
    std::vector<double> ms;
    for (int r = 0; r < 7; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < iters; ++i) f();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / iters);
    }
    std::sort(ms.begin(), ms.end());
    return ms[3];
}

}  // namespace

int main(int argc, char** argv) {
    cli::App app("bfloat16 sampling with nn::FrozenMLP: speed and checkerboard accuracy against float32");
    long steps = 4000, batch = 256, samples = 20000, euler_steps = 100, threads = 1;
    double lr = 5e-4;
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "training batch")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "AdamW learning rate")->check(CLI::PositiveNumber);
    app.add_option("--samples", samples, "points sampled for the accuracy check")->check(CLI::PositiveNumber);
    app.add_option("--euler", euler_steps, "Euler steps")->check(CLI::PositiveNumber);
    app.add_option("--threads", threads, "OpenMP threads (Eigen and oneDNN)")->check(CLI::PositiveNumber);
    cli::parse(app, argc, argv);
    omp_set_num_threads(static_cast<int>(threads));
    Eigen::setNbThreads(static_cast<int>(threads));

    fmd::Rng rng(0);
    const fmd::data::Checkerboard board;
    fmd::Matrix<S> points(2, 10000);
    board.sample(points, rng);
    const fmd::data::Dataset<S> data(points);
    fmd::nn::MLP<S> net({.dim = 2, .width = 512, .depth = 5}, rng);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr});
    fmd::GaussianPath<fmd::schedule::Linear> path;
    fmd::train::Trainer trainer(path, fmd::loss::cfm, net, opt, {.batch_size = batch});
    const auto t0 = Clock::now();
    for (long k = 0; k < steps; ++k) trainer.train_step(data, rng);
    std::printf("threads %ld, gemm backend %s; trained %ld steps at batch %ld in %.1f s\n", threads,
                std::string(fmd::nn::gemm_backend()).c_str(), steps, batch, std::chrono::duration<double>(Clock::now() - t0).count());

    fmd::nn::FrozenMLP f32(net, fmd::nn::Precision::f32), bf16(net, fmd::nn::Precision::bf16);
    std::printf("oneDNN kernels: f32 %s, bf16 %s\n", f32.implementation(1000).c_str(), bf16.implementation(1000).c_str());

    fmd::Matrix<S> noise(2, samples);
    fmd::fill_normal(noise, rng);
    fmd::solver::Euler<S> euler;
    const auto grid = fmd::grid::uniform(euler_steps);
    fmd::Matrix<S> x_mlp = noise, x_f32 = noise, x_bf16 = noise;
    fmd::sample(net, x_mlp, grid, euler);
    fmd::sample(f32, x_f32, grid, euler);
    fmd::sample(bf16, x_bf16, grid, euler);

    const double n = static_cast<double>(samples);
    auto report = [&](const char* name, const fmd::Matrix<S>& x) {
        const double p = board.filled_fraction(x);
        std::printf("  %-22s filled %.4f ± %.4f\n", name, p, std::sqrt(p * (1 - p) / n));
        return p;
    };
    std::printf("accuracy: %ld points, %ld Euler steps (± one standard error)\n", samples, euler_steps);
    report("MLP (nn::gemm)", x_mlp);
    const double p32 = report("FrozenMLP f32", x_f32);
    const double p16 = report("FrozenMLP bf16", x_bf16);
    long only32 = 0, only16 = 0;  // discordant pairs: inside for one precision only
    for (Eigen::Index j = 0; j < samples; ++j) {
        const bool in32 = board.filled_fraction(x_f32.col(j)) > 0.5, in16 = board.filled_fraction(x_bf16.col(j)) > 0.5;
        only32 += in32 && !in16;
        only16 += in16 && !in32;
    }
    std::printf("  bf16 − f32: %+.4f ± %.4f (paired: %ld points inside only in f32, %ld only in bf16)\n", p16 - p32,
                std::sqrt(static_cast<double>(only32 + only16)) / n, only32, only16);
    std::printf("  mean |x_bf16 − x_f32| = %.4f (the board's squares have side 1)\n",
                (x_bf16 - x_f32).colwise().norm().mean());

    fmd::Matrix<S> x(2, 1000);
    fmd::fill_normal(x, rng);
    fmd::solver::Euler<S> step;
    double t = 0;
    auto timed = [&](auto& field) {
        return median_ms([&] { step.step(field, fmd::Out<S>(x), t, 1e-3); t = t < 0.99 ? t + 1e-3 : 0.0; }, 50);
    };
    const double ms_mlp = timed(net), ms_f32 = timed(f32), ms_bf16 = timed(bf16);
    const double gflop = 2.0 * (512.0 * 512 + (2 * 512 + 5 * 512 * 512 + 512 * 2) * 1000.0) * 1e-9;
    std::printf("speed: one Euler step on 1000 points (median of 7 x 50)\n");
    std::printf("  MLP (nn::gemm)   %.3f ms  %.0f GFLOP/s\n", ms_mlp, gflop / ms_mlp * 1e3);
    std::printf("  FrozenMLP f32    %.3f ms  %.0f GFLOP/s\n", ms_f32, gflop / ms_f32 * 1e3);
    std::printf("  FrozenMLP bf16   %.3f ms  %.0f GFLOP/s   bf16 rate / f32 rate: %.2f (against the MLP: %.2f)\n", ms_bf16,
                gflop / ms_bf16 * 1e3, ms_f32 / ms_bf16, ms_mlp / ms_bf16);
    return 0;
}

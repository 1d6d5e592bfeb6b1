// fmd side of the side-by-side comparison with PyTorch (benchmarks/compare/run.sh drives both).
// The workload is the seed's checkerboard (cfm-from-first-principles.md): the notebook MLP in
// float32, AdamW lr 1e-4, batch B, x_t = (1 − t) x0 + t x1, target x1 − x0, Euler sampling.
//
//   fmd_compare speed   --threads N          ms per training step (batch 64, 256), per Euler step
//                                            on 1000 points (median of 5 repetitions, and their
//                                            spread as <key>_min, <key>_max), sgemm GFLOP/s of nn::gemm
//   fmd_compare data    --file F --n 10000   writes checkerboard training points (shared with torch)
//   fmd_compare quality --file F --steps K --samples-out G
//                                            trains K steps on F, samples 1000 points with 1000 Euler
//                                            steps, prints the filled-square fraction
//   fmd_compare score   --file G             filled-square fraction of a sample file (torch's)
//
// Output lines are "key value" pairs for the driver. Files are raw: int64 rows, int64 cols, then
// float32 column-major (rows = 2).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

#include <fmd/fmd.hpp>
#include <fmd/nn/nn.hpp>
#ifdef FMD_GEMM_DNNL
#include <fmd/nn/dnnl.hpp>
#endif
#include <fmd/train/train.hpp>

#include "common/cli.hpp"
#include "timing.hpp"

using S = float;
using Clock = std::chrono::steady_clock;

namespace {

void write_points(const std::string& file, const fmd::Matrix<S>& m) {
    std::ofstream f(file, std::ios::binary);
    const std::int64_t shape[2] = {m.rows(), m.cols()};
    f.write(reinterpret_cast<const char*>(shape), sizeof shape);
    f.write(reinterpret_cast<const char*>(m.data()), static_cast<std::streamsize>(sizeof(S) * static_cast<std::size_t>(m.size())));
    if (!f) throw std::runtime_error("cannot write " + file);
}

fmd::Matrix<S> read_points(const std::string& file) {
    std::ifstream f(file, std::ios::binary);
    std::int64_t shape[2] = {0, 0};
    f.read(reinterpret_cast<char*>(shape), sizeof shape);
    if (!f || shape[0] != 2 || shape[1] <= 0) throw std::runtime_error(file + ": not a 2 x n point file");
    fmd::Matrix<S> m(2, shape[1]);
    f.read(reinterpret_cast<char*>(m.data()), static_cast<std::streamsize>(sizeof(S) * static_cast<std::size_t>(m.size())));
    if (!f) throw std::runtime_error(file + ": truncated");
    return m;
}

using compare::print;
using compare::time_ms;

fmd::nn::MLP<S> seed_model(fmd::Rng& rng) { return fmd::nn::MLP<S>({.dim = 2, .width = 512, .depth = 5}, rng); }

int speed() {
    fmd::Rng rng(0);
    const fmd::data::Checkerboard board;
    fmd::Matrix<S> points(2, 10000);
    board.sample(points, rng);
    const fmd::data::Dataset<S> data(points);
    fmd::GaussianPath<fmd::schedule::Linear> path;

    for (long batch : {64L, 256L}) {
        auto net = seed_model(rng);
        fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 1e-4});
        fmd::train::Trainer trainer(path, fmd::loss::cfm, net, opt, {.batch_size = batch});
        print("train_b" + std::to_string(batch) + "_ms", time_ms([&] { trainer.train_step(data, rng); }, 20, batch == 64 ? 100 : 30, 5));
    }
    {
        auto net = seed_model(rng);
        fmd::Matrix<S> x(2, 1000), u(2, 1000);
        fmd::fill_normal(x, rng);
        fmd::solver::Euler<S> euler;
        double t = 0.0;
        const double h = 1e-3;
        print("sample_n1000_ms", time_ms([&] { euler.step(net, fmd::Out<S>(x), t, h); t = t + h < 1.0 ? t + h : 0.0; }, 10, 50, 5));
#ifdef FMD_GEMM_DNNL
        // The sampling-only snapshots (fmd/nn/dnnl.hpp): fused bias + ReLU, in float32 and bfloat16.
        for (auto precision : {fmd::nn::Precision::f32, fmd::nn::Precision::bf16}) {
            fmd::nn::FrozenMLP frozen(net, precision);
            print(precision == fmd::nn::Precision::f32 ? "sample_frozen_f32_n1000_ms" : "sample_frozen_bf16_n1000_ms",
                  time_ms([&] { euler.step(frozen, fmd::Out<S>(x), t, h); t = t + h < 1.0 ? t + h : 0.0; }, 10, 50, 5));
        }
#endif
    }
    {
        // The machine's sgemm rate through nn::gemm (the network's backend), at the hidden-layer shape.
        std::printf("gemm_backend %s\n", std::string(fmd::nn::gemm_backend()).c_str());
        for (long n : {64L, 256L, 1000L}) {
            fmd::Matrix<S> a = fmd::Matrix<S>::Random(512, 512), b = fmd::Matrix<S>::Random(512, n), c(512, n);
            const double ms = time_ms([&] { fmd::nn::gemm<S>(a, b, c); }, 5, 200, 5).median;
            std::printf("sgemm_512x512x%ld_gflops %.2f\n", n, 2.0 * 512 * 512 * static_cast<double>(n) / (ms * 1e6));
        }
    }
    return 0;
}

int quality(const std::string& file, long steps, const std::string& samples_out, unsigned long seed) {
    fmd::Rng rng(seed);
    const fmd::data::Dataset<S> data(read_points(file));
    auto net = seed_model(rng);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 1e-4});
    fmd::GaussianPath<fmd::schedule::Linear> path;
    fmd::train::Trainer trainer(path, fmd::loss::cfm, net, opt, {.batch_size = 64});
    const auto t0 = Clock::now();
    for (long k = 0; k < steps; ++k) trainer.train_step(data, rng);
    const double train_s = std::chrono::duration<double>(Clock::now() - t0).count();

    fmd::Matrix<S> x(2, 1000);
    fmd::fill_normal(x, rng);
    fmd::solver::Euler<S> euler;
    fmd::sample(net, x, fmd::grid::uniform(1000), euler);
    if (!samples_out.empty()) write_points(samples_out, x);
    std::printf("train_seconds %.2f\nfilled %.4f\n", train_s, fmd::data::Checkerboard{}.filled_fraction(x));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    cli::App app("fmd's side of benchmarks/compare/run.sh: the seed checkerboard workload");
    std::string mode, file, samples_out;
    long threads = 1, n = 10000, steps = 1000;
    unsigned long seed = 0;
    app.add_option("mode", mode, "what to run")->required()->check(CLI::IsMember({"speed", "data", "quality", "score"}));
    app.add_option("--threads", threads, "Eigen threads")->check(CLI::PositiveNumber);
    app.add_option("--file", file, "data file (data: written; quality, score: read)");
    app.add_option("--n", n, "points")->check(CLI::PositiveNumber);
    app.add_option("--steps", steps, "training steps (quality)")->check(CLI::PositiveNumber);
    app.add_option("--samples-out", samples_out, "where quality writes its samples");
    app.add_option("--seed", seed, "random seed");
    cli::parse(app, argc, argv);
    Eigen::setNbThreads(static_cast<int>(threads));
    std::printf("threads %d\n", Eigen::nbThreads());

    if (mode == "speed") return speed();
    if (mode == "data") {
        fmd::Rng rng(seed);
        fmd::Matrix<S> points(2, n);
        fmd::data::Checkerboard{}.sample(points, rng);
        write_points(file, points);
        return 0;
    }
    if (mode == "quality") return quality(file, steps, samples_out, seed);
    if (mode == "score") {
        std::printf("filled %.4f\n", fmd::data::Checkerboard{}.filled_fraction(read_points(file)));
        return 0;
    }
    std::fprintf(stderr, "fmd_compare: unknown mode '%s'\n", mode.c_str());
    return 2;
}

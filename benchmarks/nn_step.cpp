// The built-in network's pieces alone, float32, on the seed model (dim 2, width 512, depth 5,
// sinusoidal time embedding): training forward, backward, the AdamW update, and the sampling
// forward (one time for the whole batch). Counters report GFLOP/s of the matrix products.
// Threads: OMP_NUM_THREADS (Eigen's GEMM).
#include <benchmark/benchmark.h>

#include <fmd/core/random.hpp>
#include <fmd/nn/nn.hpp>

namespace {

using S = float;
constexpr double width = 512, depth = 5;
// Multiply-adds per column: input (2→w), time branch (w→w), hidden blocks, output (w→2).
constexpr double macs_time = width * width;
constexpr double macs_rest = 2 * width + depth * width * width + 2 * width;

fmd::nn::MLP<S> seed_model() {
    fmd::Rng rng(0);
    return fmd::nn::MLP<S>({.dim = 2, .width = 512, .depth = 5}, rng);
}

struct Batch {
    fmd::Matrix<S> x, out;
    fmd::Row<S> t;
    explicit Batch(long n) : x(2, n), out(2, n), t(n) {
        fmd::Rng rng(1);
        fmd::fill_normal(x, rng);
        for (long j = 0; j < n; ++j) t(j) = static_cast<S>(fmd::uniform01(rng));
    }
};

void flops(benchmark::State& state, double per_iteration) {
    state.counters["GFLOP/s"] = benchmark::Counter(per_iteration * static_cast<double>(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}

void BM_Forward(benchmark::State& state) {
    auto net = seed_model();
    Batch b(state.range(0));
    for (auto _ : state) {
        net.forward(b.x, b.t, b.out);
        benchmark::DoNotOptimize(b.out.data());
    }
    flops(state, 2 * (macs_time + macs_rest) * static_cast<double>(state.range(0)));
}

void BM_Backward(benchmark::State& state) {
    auto net = seed_model();
    Batch b(state.range(0));
    net.forward(b.x, b.t, b.out);
    for (auto _ : state) {
        net.backward(b.out);
        benchmark::DoNotOptimize(net.gradients().data());
    }
    // Weight gradients of every layer plus input gradients of the hidden and output layers.
    flops(state, 2 * (macs_time + macs_rest + depth * width * width + 2 * width) * static_cast<double>(state.range(0)));
}

void BM_AdamW(benchmark::State& state) {
    auto net = seed_model();
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 1e-4});
    net.gradients().setConstant(1e-3f);
    for (auto _ : state) {
        opt.step(net.parameters(), net.gradients());
        benchmark::DoNotOptimize(net.parameters().data());
    }
    state.SetItemsProcessed(state.iterations() * net.parameter_count());
}

void BM_SamplingForward(benchmark::State& state) {
    auto net = seed_model();
    Batch b(state.range(0));
    for (auto _ : state) {
        net(b.x, 0.37, b.out);
        benchmark::DoNotOptimize(b.out.data());
    }
    flops(state, 2 * macs_time + 2 * macs_rest * static_cast<double>(state.range(0)));
}

}  // namespace

BENCHMARK(BM_Forward)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Backward)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AdamW)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SamplingForward)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();

// Training-step cost of the flow-map objectives against plain CFM, on whole Trainer steps
// (sampling of t/ε, x_t, forward, backward, AdamW) of the seed model's size (dim 2, width 512,
// depth 5, float32) and of example 06's (width 256, depth 3). MeanFlow adds a second time input
// (one more width x channels product each way) and one tangent pass; the goal is at most
// 2x CFM's step. Compare the rows of one run: e.g.
//   build/release/benchmarks/bench_few_step --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Threads: OMP_NUM_THREADS (Eigen's GEMM).
#include <benchmark/benchmark.h>

#include <fmd/fmd.hpp>

namespace {

using S = float;
using Net = fmd::nn::MLP<S>;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;

fmd::nn::MLPConfig config(long width, bool two_times) {
    const long depth = width == 512 ? 5 : 3;
    return {.dim = 2, .width = width, .depth = depth, .activation = fmd::nn::Activation::silu, .time = {.scale = 100.0}, .two_times = two_times};
}

template <class Objective>
void run(benchmark::State& state, Objective objective, bool two_times) {
    const long width = state.range(0), batch = state.range(1);
    fmd::Rng rng(0);
    Net net(config(width, two_times), rng);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 1e-4});
    fmd::train::Trainer trainer(Path{}, std::move(objective), net, opt, {.batch_size = batch});
    const fmd::data::Checkerboard board;
    trainer.train_step(board, rng);  // sizes the buffers
    for (auto _ : state) benchmark::DoNotOptimize(trainer.train_step(board, rng));
    state.SetItemsProcessed(state.iterations() * batch);
}

void BM_Cfm(benchmark::State& state) { run(state, fmd::loss::cfm, false); }
void BM_MeanFlow(benchmark::State& state) { run(state, fmd::flowmap::MeanFlow<S>({.fraction_unequal = 0.75}), true); }
void BM_Shortcut(benchmark::State& state) { run(state, fmd::flowmap::Shortcut<S>({.max_steps = 128}), true); }
void BM_ConsistencyTraining(benchmark::State& state) { run(state, fmd::flowmap::ConsistencyTraining<S>({.s0 = 10, .s1 = 10}), false); }

void shapes(benchmark::internal::Benchmark* b) {
    for (long width : {256, 512})
        for (long batch : {64, 256}) b->Args({width, batch});
    b->ArgNames({"width", "batch"})->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_Cfm)->Apply(shapes);
BENCHMARK(BM_MeanFlow)->Apply(shapes);
BENCHMARK(BM_Shortcut)->Apply(shapes);
BENCHMARK(BM_ConsistencyTraining)->Apply(shapes);
BENCHMARK_MAIN();

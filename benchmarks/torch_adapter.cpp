// The LibTorch adapter's overhead (fmd/torch/network.hpp): one sampling call and one training
// forward + backward of the same module, through fmd::libtorch::Network and straight through
// LibTorch. The gap is the adapter's cost: batch views, the output copy and the finite check.
//   OMP_NUM_THREADS=1 build/release/benchmarks/bench_torch_adapter --benchmark_repetitions=5
#include <cstdint>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <fmd/fmd.hpp>
#include <fmd/torch/network.hpp>

namespace {

using S = float;

// The seed notebook's model at width 256, depth 3 (x and the embedded time summed, ReLU blocks).
struct MlpImpl : torch::nn::Module {
    MlpImpl() {
        in = register_module("in", torch::nn::Linear(2, 256));
        time = register_module("time", torch::nn::Linear(256, 256));
        for (const char* name : {"b0", "b1", "b2"}) blocks.push_back(register_module(name, torch::nn::Linear(256, 256)));
        out = register_module("out", torch::nn::Linear(256, 2));
    }
    torch::Tensor forward(torch::Tensor x, torch::Tensor t) {
        const auto freqs = torch::exp(torch::arange(128, t.options()) * (-std::log(10000.0) / 127));
        const auto angles = (t * 10000.0).unsqueeze(1) * freqs.unsqueeze(0);
        auto h = in->forward(x) + time->forward(torch::cat({angles.sin(), angles.cos()}, 1));
        for (auto& b : blocks) h = torch::relu(b->forward(h));
        return out->forward(h);
    }
    torch::nn::Linear in{nullptr}, time{nullptr}, out{nullptr};
    std::vector<torch::nn::Linear> blocks;
};
TORCH_MODULE(Mlp);

fmd::Matrix<S> batch(std::int64_t n) {
    fmd::Rng rng(1);
    fmd::Matrix<S> x(2, n);
    fmd::fill_normal(x, rng);
    return x;
}

void BM_Sample_Direct(benchmark::State& state) {
    torch::manual_seed(0);
    Mlp m;
    m->eval();
    const auto n = state.range(0);
    const auto x = torch::randn({n, 2});
    for (auto _ : state) {
        c10::InferenceMode guard;
        auto y = m->forward(x, torch::full({n}, 0.5));
        benchmark::DoNotOptimize(y.data_ptr<S>());
    }
}

void BM_Sample_Adapter(benchmark::State& state) {
    torch::manual_seed(0);
    fmd::libtorch::Network<S, Mlp> net(Mlp(), 2);
    const fmd::Matrix<S> x = batch(state.range(0));
    fmd::Matrix<S> out(2, x.cols());
    for (auto _ : state) {
        net(x, 0.5, out);
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_Train_Direct(benchmark::State& state) {
    torch::manual_seed(0);
    Mlp m;
    const auto n = state.range(0);
    const auto x = torch::randn({n, 2}), t = torch::rand({n}), g = torch::randn({n, 2});
    for (auto _ : state) {
        m->zero_grad();
        m->forward(x, t).backward(g);
    }
}

void BM_Train_Adapter(benchmark::State& state) {
    torch::manual_seed(0);
    fmd::libtorch::Network<S, Mlp> net(Mlp(), 2);
    const fmd::Matrix<S> x = batch(state.range(0)), g = batch(state.range(0));
    fmd::Row<S> t = fmd::Row<S>::Constant(x.cols(), 0.3f);
    fmd::Matrix<S> out(2, x.cols());
    for (auto _ : state) {
        net.forward(x, t, out);
        net.backward(g);
    }
}

BENCHMARK(BM_Sample_Direct)->Arg(64)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Sample_Adapter)->Arg(64)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Train_Direct)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Train_Adapter)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

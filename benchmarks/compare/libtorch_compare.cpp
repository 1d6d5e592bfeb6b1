// LibTorch (C++) side of the side-by-side comparison (benchmarks/compare/run.sh drives all three).
// The same model and workloads as torch_compare.py, without the Python interpreter in between:
// the notebook MLP (notebook_model.py) in float32, AdamW lr 1e-4, training steps at batch 64 and
// 256, one Euler step on 1000 points.
//
//   libtorch_compare speed --threads N
//
// Prints "key value" lines like fmd_compare and torch_compare.py: the median ms of 5 repetitions
// and, as <key>_min / <key>_max, their spread.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "timing.hpp"

namespace {

struct NotebookMLPImpl : torch::nn::Module {
    static constexpr int kChannels = 512, kChannelsT = 512, kLayers = 5;

    NotebookMLPImpl() {
        in_projection = register_module("in_projection", torch::nn::Linear(2, kChannels));
        t_projection = register_module("t_projection", torch::nn::Linear(kChannelsT, kChannels));
        for (int i = 0; i < kLayers; ++i) {
            blocks->push_back(torch::nn::Linear(kChannels, kChannels));
            blocks->push_back(torch::nn::ReLU());
        }
        register_module("blocks", blocks);
        out_projection = register_module("out_projection", torch::nn::Linear(kChannels, 2));
    }

    // Sinusoidal embedding of every point's time, as gen_t_embedding in notebook_model.py.
    static torch::Tensor t_embedding(const torch::Tensor& t, double max_positions = 10000.0) {
        const int half = kChannelsT / 2;
        const auto freqs = torch::arange(half, t.options()).mul(-std::log(max_positions) / (half - 1)).exp();
        const auto emb = (t * max_positions).unsqueeze(1) * freqs.unsqueeze(0);
        return torch::cat({emb.sin(), emb.cos()}, 1);
    }

    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) {
        auto h = in_projection->forward(x) + t_projection->forward(t_embedding(t));
        return out_projection->forward(blocks->forward(h));
    }

    torch::nn::Linear in_projection{nullptr}, t_projection{nullptr}, out_projection{nullptr};
    torch::nn::Sequential blocks;
};
TORCH_MODULE(NotebookMLP);

using compare::print;
using compare::time_ms;

// The OpenBLAS kernel that LibTorch's sgemm runs (OPENBLAS_CORETYPE can force an older one).
const char* openblas_core() {
    void* lib = dlopen("libopenblas.so.0", RTLD_NOLOAD | RTLD_NOW);
    if (lib == nullptr) return "not-loaded";
    using Fn = char* (*)();
    const auto fn = reinterpret_cast<Fn>(dlsym(lib, "openblas_get_corename"));
    return fn != nullptr ? fn() : "unknown";
}

void speed() {
    const auto data = torch::rand({10000, 2}) * 8 - 4;
    for (const long batch : {64L, 256L}) {
        NotebookMLP model;
        torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4));
        // The seed's training loop body, as make_train_step in torch_compare.py.
        const auto step = [&] {
            const auto x1 = data.index({torch::randint(data.size(0), {batch})});
            const auto x0 = torch::randn_like(x1);
            const auto t = torch::rand({batch});
            const auto xt = (1 - t.unsqueeze(1)) * x0 + t.unsqueeze(1) * x1;
            const auto loss = (model->forward(xt, t) - (x1 - x0)).pow(2).mean();
            opt.zero_grad();
            loss.backward();
            opt.step();
        };
        const auto key = batch == 64 ? "train_b64_ms" : "train_b256_ms";
        print(key, time_ms(step, 20, batch == 64 ? 100 : 30, 5));
    }
    {
        NotebookMLP model;
        auto x = torch::randn({1000, 2});
        const auto t = torch::full({1000}, 0.5);
        const auto step = [&] {
            torch::NoGradGuard no_grad;
            x.add_(model->forward(x, t), 1e-3);
        };
        print("sample_n1000_ms", time_ms(step, 10, 50, 5));
    }
    for (const long n : {64L, 256L, 1000L}) {
        const auto a = torch::rand({512, 512}), b = torch::rand({512, n});
        const auto s = time_ms([&] { (void)torch::mm(a, b); }, 5, 200, 5);
        std::printf("sgemm_512x512x%ld_gflops %.2f\n", n, 2.0 * 512 * 512 * static_cast<double>(n) / (s.median * 1e6));
    }
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = std::atoi(argv[++i]);
        } else if (std::strcmp(argv[i], "speed") != 0) {
            std::fprintf(stderr, "usage: %s speed [--threads N]\n", argv[0]);
            return 2;
        }
    }
    at::set_num_threads(std::max(threads, 1));
    at::set_num_interop_threads(1);
    // As torch_compare.py: tiny gradients and Adam moments can become denormal, and arithmetic on
    // denormals takes the CPU's slow microcode path.
    at::globalContext().setFlushDenormal(true);
    torch::manual_seed(0);
    std::printf("threads %d\ntorch_version %s\nopenblas_core %s\n", at::get_num_threads(), TORCH_VERSION, openblas_core());
    speed();
    return 0;
}

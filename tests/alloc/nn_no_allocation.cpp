// nn::MLP (forward, backward, sampling call, jvp) and the optimizers allocate nothing after the first call at a batch size.
//
// Detectors: counter.hpp. Its malloc interposer (glibc, non-sanitizer builds) sees every heap
// allocation, Eigen's included; Eigen's runtime malloc check also runs in sanitizer builds.
#include "counter.hpp"

#include <fmd/nn/nn.hpp>

namespace {

using alloc_test::Allocations;
using alloc_test::count_allocations;

template <class S>
void check_mlp(fmd::nn::Activation act, fmd::nn::Embedding emb) {
    using fmd::Matrix;
    using fmd::Row;
    // Width 64: Eigen's GEMM packing buffers stay under EIGEN_STACK_ALLOCATION_LIMIT (on the
    // stack); at width 512 Eigen itself takes them from the heap (see nn/mlp.hpp).
    fmd::Rng rng(1);
    fmd::nn::MLP<S> net({.dim = 2, .width = 64, .depth = 3, .activation = act, .time = {.kind = emb}}, rng);
    fmd::nn::AdamW<S> adamw(net.parameter_count());
    fmd::nn::SGD<S> sgd(net.parameter_count(), {.lr = 0.01, .momentum = 0.9});
    const fmd::nn::WarmupCosine schedule{.peak_lr = 1e-3, .warmup_steps = 10, .total_steps = 100};
    for (const Eigen::Index n : {17, 64, 40}) {  // grows, then a smaller batch
        Matrix<S> x(2, n), out(2, n), grad_x(2, n);
        Row<S> t(n);
        fmd::fill_normal(x, rng);
        for (Eigen::Index j = 0; j < n; ++j) t(j) = static_cast<S>(fmd::uniform01(rng));
        // First calls at this batch size size the workspaces.
        net.forward(x, t, out);
        net.backward(out, grad_x);
        net(x, 0.5, out);
        net.jvp(x, 0.5, grad_x, out);
        adamw.step(net.parameters(), net.gradients());
        const Allocations during = count_allocations([&] {
            for (int rep = 0; rep < 3; ++rep) {
                net.forward(x, t, out);
                net.backward(out);
                net.backward(out, grad_x);
                fmd::nn::clip_grad_norm(net.gradients(), 1.0);
                adamw.set_lr(schedule.lr(rep));
                adamw.step(net.parameters(), net.gradients());
                sgd.step(net.parameters(), net.gradients());
                net(x, 0.25 * rep, out);
                net(x.leftCols(n - 1), 0.5, out.leftCols(n - 1));  // smaller batches reuse the workspaces
                net(x.leftCols(n - 1), 0.7, out.leftCols(n - 1));
                net.jvp(x, 0.3, grad_x, out);  // forward-mode tangents reuse their own workspace
                net.jvp(x.leftCols(n - 1), 0.6, grad_x.leftCols(n - 1), out.leftCols(n - 1));
            }
        });
        INFO("batch " << n);
        CHECK_NO_ALLOCATIONS(during);
    }
}

}  // namespace

TEST_CASE("nn: MLP forward/backward/sampling and optimizers allocate nothing after the first call", "[alloc][nn]") {
    // The counters see allocations at all.
    const Allocations control = count_allocations([] {
        fmd::Matrix<float> m(100, 100);
        m.setZero();
    });
    REQUIRE(control.eigen_mallocs >= 1);
    if constexpr (alloc_test::counting_malloc) REQUIRE(control.mallocs >= 1);
    check_mlp<float>(fmd::nn::Activation::relu, fmd::nn::Embedding::sinusoidal);
    check_mlp<double>(fmd::nn::Activation::silu, fmd::nn::Embedding::fourier);
}

// nn::MLP and the optimizers allocate nothing after the first call at a batch size.
//
// Eigen takes its memory from std::malloc (not operator new), so this file counts malloc /
// calloc / realloc themselves, by interposing glibc's allocator entry points (forwarding to
// __libc_malloc & co.). That sees every heap allocation: Eigen's, operator new's, anyone's.
// Skipped where it cannot work: sanitizer builds (FMD_TEST_NO_NEW_COUNTER, they own malloc)
// and non-glibc C libraries.
#include <cstddef>
#include <cstdint>

#include <catch2/catch.hpp>

#include <fmd/nn/nn.hpp>

#if defined(__GLIBC__) && !defined(FMD_TEST_NO_NEW_COUNTER)
#define FMD_NN_MALLOC_COUNTER 1
#include <atomic>

namespace {
std::atomic<long> nn_malloc_calls{0};
}

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t size) noexcept {
    nn_malloc_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
    nn_malloc_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
    nn_malloc_calls.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, size);
}
void free(void* p) noexcept { __libc_free(p); }
}
#endif

namespace {

#ifdef FMD_NN_MALLOC_COUNTER
long mallocs() { return nn_malloc_calls.load(std::memory_order_relaxed); }
#endif

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
    [[maybe_unused]] const fmd::nn::WarmupCosine schedule{.peak_lr = 1e-3, .warmup_steps = 10, .total_steps = 100};
    for (const Eigen::Index n : {17, 64, 40}) {  // grows, then a smaller batch
        Matrix<S> x(2, n), out(2, n), grad_x(2, n);
        Row<S> t(n);
        fmd::fill_normal(x, rng);
        for (Eigen::Index j = 0; j < n; ++j) t(j) = static_cast<S>(fmd::uniform01(rng));
        // First calls at this batch size size the workspaces.
        net.forward(x, t, out);
        net.backward(out, grad_x);
        net(x, 0.5, out);
        adamw.step(net.parameters(), net.gradients());
#ifdef FMD_NN_MALLOC_COUNTER
        const long before = mallocs();
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
        }
        const long during = mallocs() - before;
        INFO("batch " << n << ": " << during << " heap allocations");
        CHECK(during == 0);
#endif
    }
}

}  // namespace

TEST_CASE("nn: MLP forward/backward/sampling and optimizers allocate nothing after the first call", "[alloc][nn]") {
#ifdef FMD_NN_MALLOC_COUNTER
    // The counter sees allocations at all.
    const long before = mallocs();
    { fmd::Matrix<float> m(100, 100); m.setZero(); }
    REQUIRE(mallocs() - before >= 1);
#endif
    check_mlp<float>(fmd::nn::Activation::relu, fmd::nn::Embedding::sinusoidal);
    check_mlp<double>(fmd::nn::Activation::silu, fmd::nn::Embedding::fourier);
}

// Allocation behaviour of the oneDNN backend, measured (detectors: tests/alloc/counter.hpp).
// Eigen allocates nothing in nn::MLP's passes, the optimizer or nn::FrozenMLP after the first call
// at a batch size, and nothing grows from call to call. oneDNN itself does take a few small heap
// blocks per product (its per-execution argument table and scratchpad bookkeeping; the first run
// of this test counted 25 for a depth-2 backward pass, 45 for a FrozenMLP call): the count is
// asserted to be the same on every call, and the default Eigen backend's zero is tested by
// fmd_alloc_tests.
#include "alloc/counter.hpp"

#include <array>

#include <fmd/nn/dnnl.hpp>
#include <fmd/nn/nn.hpp>

using alloc_test::Allocations;
using alloc_test::count_allocations;

TEST_CASE("oneDNN backend: no Eigen allocation and a constant count per call after the first", "[alloc][dnnl]") {
    using fmd::Matrix;
    fmd::Rng rng(1);
    // Width 512: the hidden products take the cached matmul (transposed) and sgemm (plain) paths.
    fmd::nn::MLP<float> net({.dim = 2, .width = 512, .depth = 2}, rng);
    fmd::nn::AdamW<float> adamw(net.parameter_count());
    for (const Eigen::Index n : {64, 200}) {
        Matrix<float> x(2, n), out(2, n), grad_x(2, n);
        fmd::Row<float> t(n);
        fmd::fill_normal(x, rng);
        for (Eigen::Index j = 0; j < n; ++j) t(j) = static_cast<float>(fmd::uniform01(rng));
        fmd::nn::FrozenMLP frozen(net);
        auto pass = [&] {
            net.forward(x, t, out);
            net.backward(out, grad_x);
            adamw.step(net.parameters(), net.gradients());
            net(x, 0.5, out);
            frozen(x, 0.5, out);
        };
        pass();  // sizes workspaces, makes the primitives
        pass();
        std::array<Allocations, 3> per_pass;
        for (auto& a : per_pass) a = count_allocations(pass);
        INFO("batch " << n << ": allocations per pass " << per_pass[0].mallocs << ", " << per_pass[1].mallocs << ", "
                      << per_pass[2].mallocs);
        for (const auto& a : per_pass) CHECK(a.eigen_mallocs == 0);
        CHECK(per_pass[1].mallocs == per_pass[0].mallocs);
        CHECK(per_pass[2].mallocs == per_pass[0].mallocs);
        CHECK(per_pass[0].mallocs < 200);  // a few per product, not per column or per parameter
        const Allocations update = count_allocations([&] { adamw.step(net.parameters(), net.gradients()); });
        CHECK_NO_ALLOCATIONS(update);  // fmd's own loops: none
    }
}

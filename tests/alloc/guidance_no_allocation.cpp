// fmd::Guided (theory.md §7.8, include/fmd/field/guidance.hpp) allocates nothing after its first
// call at a batch size ("the workspace grows to the largest batch seen: no allocation after the
// first call at that or any smaller batch size"). Checked on a conditional nn::MLP (both branches
// in one network pass over [x, x] with labels [y, ∅]) and on the exact ConditionalMixtureOracle,
// for w ∉ {0, 1} (two branches) and w ∈ {0, 1} (one branch): new times, broadcast labels, a
// smaller batch, switching w to one branch, and a whole guided Heun solve. The first call must
// allocate (Guided's and the network's workspaces), so the zeros are not vacuous; the measured
// calls must have computed (1 − w) f(x|∅) + w f(x|y). Detectors: counter.hpp.
#include "counter.hpp"

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using alloc_test::Allocations;
using alloc_test::count_allocations;

template <class S, class F>
void check_guided(F& field, int null_label, double w) {
    INFO("w = " << w);
    const Eigen::Index n = 48;
    fmd::Rng rng(4);
    const Matrix<S> x = fmd_test::normal<S>(2, n, rng);
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (std::size_t j = 0; j < labels.size(); ++j) labels[j] = static_cast<int>(j % static_cast<std::size_t>(null_label + 1));  // ∅ included
    fmd::Guided<S, F> g(field, null_label, w, labels);

    Matrix<S> first(2, n), out(2, n);
    const Allocations warm_up = count_allocations([&] { g(x, 0.3, first); });
    INFO("first call: " << warm_up.news << " operator new, " << warm_up.eigen_mallocs << " Eigen mallocs, " << warm_up.mallocs
                        << " malloc calls");
    CHECK(warm_up.eigen_mallocs > 0);

    // New times, same batch and labels.
    const Allocations same = count_allocations([&] {
        g(x, 0.1, out);
        g(x, 0.6, out);
        g(x, 0.9, out);
    });
    CHECK_NO_ALLOCATIONS(same);
    // The measured calls computed the guided field: against two direct calls of the wrapped
    // field (per-branch rounding only; a wrong mix is off by O(1)).
    Matrix<S> cond(2, n), uncond(2, n);
    const std::vector<int> nulls(labels.size(), null_label);
    field(x, 0.9, fmd::Labels(labels), cond);
    field(x, 0.9, fmd::Labels(nulls), uncond);
    const Matrix<S> want = S(1 - w) * uncond + S(w) * cond;
    const double tol = std::is_same_v<S, float> ? 1e-5 : 1e-12;
    CHECK(fmd_test::max_abs_diff(out, want) <= tol * (1 + std::abs(w)) * (fmd_test::max_abs(cond) + fmd_test::max_abs(uncond)));
    CHECK(fmd_test::max_abs_diff(out, first) > 0);

    // One label for every column, then a smaller batch.
    g.set_label(1);  // copies the label (may allocate: outside the measured region)
    const Allocations smaller = count_allocations([&] {
        g(x, 0.4, out);
        g(fmd::In<S>(x.leftCols(n / 2)), 0.5, fmd::Out<S>(out.leftCols(n / 2)));
    });
    CHECK_NO_ALLOCATIONS(smaller);

    // After a two-branch first call, the one-branch weights reuse the workspace.
    if (w != 0.0 && w != 1.0) {
        const Allocations one_branch = count_allocations([&] {
            g.set_weight(1.0);
            g(x, 0.7, out);
            g.set_weight(0.0);
            g(x, 0.8, out);
            g.set_weight(w);
        });
        CHECK_NO_ALLOCATIONS(one_branch);
    }

    // A whole guided Heun solve after one warm-up step (Heun's stage buffers).
    Matrix<S> xs = x;
    fmd::solver::Heun<S> heun;
    heun.step(g, fmd::Out<S>(xs), 0.0, 0.05);
    const auto grid = fmd::grid::uniform(20);
    const Allocations solve = count_allocations([&] { fmd::integrate(g, xs, grid, heun, fmd::NoObserver{}); });
    CHECK_NO_ALLOCATIONS(solve);
    CHECK(xs.allFinite());
}

}  // namespace

TEMPLATE_TEST_CASE("Guided on a conditional MLP allocates nothing after the first call", "[alloc][guidance]", float, double) {
    // Width 64: Eigen's GEMM packing buffers stay on the stack for the 2n = 96 column batches
    // (nn/mlp.hpp); much wider layers take them from the heap inside Eigen itself.
    using S = TestType;
    for (const double w : {3.0, -0.5, 1.0, 0.0}) {
        fmd::nn::MLP<S> net({.dim = 2, .width = 64, .depth = 3, .activation = fmd::nn::Activation::silu, .num_classes = 3}, 7);
        check_guided<S>(net, net.null_label(), w);
    }
}

TEMPLATE_TEST_CASE("Guided on the ConditionalMixtureOracle allocates nothing after the first call", "[alloc][guidance]", float, double) {
    using S = TestType;
    using Path = fmd::GaussianPath<fmd::schedule::Linear>;
    const fmd::LabelledMixture<S> data(fmd_test::separated_blobs<S>(), {0, 1, 1});
    for (const double w : {3.0, -0.5, 1.0, 0.0}) {
        fmd::ConditionalMixtureOracle<Path, S> oracle(Path{}, data);
        check_guided<S>(oracle, oracle.null_label(), w);
    }
}

// Flow maps allocate nothing after the first call at a batch size: the two-time MLP's flow-map
// call, training forward and tangent(); sample_flow_map; and a Trainer step with each flow-map
// objective (MeanFlow, shortcut, consistency training and distillation). Detectors: counter.hpp.
#include "counter.hpp"

#include <string>

#include <fmd/fmd.hpp>

namespace flowmap_alloc_test {

using alloc_test::Allocations;
using alloc_test::count_allocations;
using fmd::Matrix;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;
using Net = fmd::nn::MLP<float>;

// Width 64: Eigen's GEMM packing buffers stay on the stack (nn/mlp.hpp).
constexpr fmd::nn::MLPConfig one_time{.dim = 2, .width = 64, .depth = 2, .activation = fmd::nn::Activation::silu};
constexpr fmd::nn::MLPConfig two_times{.dim = 2, .width = 64, .depth = 2, .activation = fmd::nn::Activation::silu, .two_times = true};

void expect_none(const Allocations& a, const std::string& what) {
    INFO(what << ": " << a.news << " operator new, " << a.eigen_mallocs << " Eigen mallocs, " << a.mallocs << " malloc calls");
    CHECK(a.news == 0);
    CHECK(a.eigen_mallocs == 0);
    CHECK(a.mallocs == 0);
}

template <class Objective>
void check_objective(Net& net, Objective objective, const std::string& name) {
    fmd::nn::AdamW<float> opt(net.parameter_count(), {.lr = 1e-3});
    fmd::train::Trainer trainer(Path{}, std::move(objective), net, opt, {.batch_size = 64});
    const auto board = fmd::data::Checkerboard{};
    fmd::Rng rng(2);
    const Allocations first = count_allocations([&] { trainer.train_step(board, rng); });
    CHECK(first.eigen_mallocs > 0);  // the detector sees the objective's buffers being sized
    const auto before = net.parameters().eval();
    expect_none(count_allocations([&] {
                    for (int i = 0; i < 4; ++i) trainer.train_step(board, rng);
                }),
                name + ", 4 steps after the first");
    CHECK_FALSE(net.parameters() == before);
}

TEST_CASE("flow maps allocate nothing after the first call", "[alloc][flowmap]") {
    fmd::Rng rng(1);
    Net net(two_times, rng);
    Matrix<float> x(2, 50), out(2, 50), work;
    fmd::Row<float> t(50), r(50);
    fmd::fill_normal(x, rng);
    t.setConstant(0.25f);
    r.setConstant(0.75f);
    net.forward(x, t, r, out);
    net.tangent(x, 1.0, 0.0, out);
    net(x, 0.1, 0.6, out);
    Matrix<float> y = x;
    fmd::sample_flow_map(net, y, fmd::grid::uniform(2), work);
    const auto grid = fmd::grid::uniform(4);
    expect_none(count_allocations([&] {
                    net.forward(x, t, r, out);
                    net.tangent(x, 1.0, 0.0, out);
                    net.backward(out);
                    net(x, 0.1, 0.6, out);
                    y = x;
                    fmd::sample_flow_map(net, y, grid, work);
                }),
                "two-time MLP calls and sample_flow_map");

    Net mf(two_times, rng), sc(two_times, rng), ct(one_time, rng), cd(one_time, rng), teacher(one_time, rng);
    check_objective(mf, fmd::flowmap::MeanFlow<float>({.fraction_unequal = 0.5}), "MeanFlow");
    check_objective(sc, fmd::flowmap::Shortcut<float>({.max_steps = 16}), "Shortcut");
    check_objective(ct, fmd::flowmap::ConsistencyTraining<float>({.s0 = 4, .s1 = 4}), "ConsistencyTraining");
    check_objective(cd, fmd::flowmap::ConsistencyDistillation<float, Net, fmd::solver::Heun<float>>(teacher, {}, {.s0 = 8}), "ConsistencyDistillation");
}

}  // namespace flowmap_alloc_test

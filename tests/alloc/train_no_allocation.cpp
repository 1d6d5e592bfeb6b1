// train::Trainer::train_step allocates nothing once the first step has sized its batch buffers
// (trainer.hpp: "train_step allocates nothing once the first step has sized the batch buffers";
// the loop of theory.md §6: sample z, ε, t → x_t → forward → loss gradient (§6.7) → backward →
// clip → lr → AdamW step → EMA).
//
// The detectors are those of counter.hpp. A warm-up step that must allocate (the trainer's and
// the network's buffers) shows the detectors see the trainer's own allocation paths, so the zeros
// below are not vacuous.
#include "counter.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmd/fmd.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using fmd::Vector;
using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;
using alloc_test::Allocations;
using alloc_test::count_allocations;
using alloc_test::counting_new;

struct Variant {
    std::string name;
    fmd::train::TrainerOptions options;
};

std::vector<Variant> variants() {
    const fmd::nn::WarmupCosine schedule{.peak_lr = 3e-3, .warmup_steps = 2, .total_steps = 20, .min_lr = 1e-4};
    // The schedule is bigger than std::function's small buffer: constructing the option allocates,
    // calling it must not.
    auto lr = [schedule](std::int64_t s) { return schedule.lr(s); };
    return {
        {"plain", {.batch_size = 128}},
        {"EMA", {.batch_size = 128, .ema_decay = 0.999}},
        {"clip_norm", {.batch_size = 128, .clip_norm = 0.1}},
        {"EMA + clip_norm + warm-up/cosine lr", {.batch_size = 128, .ema_decay = 0.99, .clip_norm = 0.1, .lr_schedule = lr}},
    };
}

/// A conditional MLP that counts the labels the trainer feeds it, ∅ among them: evidence that the
/// measured steps took the labelled path with label dropout (theory.md §6.9). Counting allocates
/// nothing.
template <class S>
struct LabelCountingMLP : fmd::nn::MLP<S> {
    using fmd::nn::MLP<S>::MLP;
    using fmd::nn::MLP<S>::forward;
    long seen = 0, nulls = 0;
    void forward(fmd::In<S> x, const fmd::RowIn<S>& t, fmd::Labels labels, fmd::Out<S> out) {
        for (int y : labels) nulls += y == this->null_label();
        seen += static_cast<long>(labels.size());
        fmd::nn::MLP<S>::forward(x, t, labels, out);
    }
};

// Width 64: Eigen's GEMM packing buffers stay on the stack (nn/mlp.hpp); wider layers take them
// from the heap inside Eigen itself.
constexpr fmd::nn::MLPConfig net_config{.dim = 2, .width = 64, .depth = 3};

/// A warm-up train_step, then 5 measured ones and a measured step_on, on a fresh trainer for net.
/// A labelled source (theory.md §6.9) trains net on (z, y) with label dropout.
template <class Net, class Source>
void check_train_steps(Net& net, const Source& source, const Variant& v) {
    using S = typename Net::Scalar;
    constexpr bool labelled = fmd::train::LabelledDataSource<Source, S>;
    INFO("options: " << v.name << (labelled ? ", labelled" : "") << (counting_new ? "" : " (operator new not counted in this build)"));
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 3e-3});
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, v.options);
    fmd::Rng rng(5);
    S loss = 0;

    // First step: sizes the batch, x_t / ε / pred / grad / t buffers and the MLP's workspaces.
    const Allocations warm_up = count_allocations([&] { loss = trainer.train_step(source, rng); });
    CHECK(warm_up.eigen_mallocs > 0);  // the detector sees the trainer's own allocations
    const Vector<S> after_first = net.parameters();
    const Vector<S> ema_after_first = trainer.ema();
    long seen0 = 0, nulls0 = 0;
    if constexpr (labelled) {
        seen0 = net.seen;
        nulls0 = net.nulls;
    }

    S last = 0;
    const Allocations steps = count_allocations([&] {
        for (int i = 0; i < 5; ++i) last = trainer.train_step(source, rng);
    });
    INFO("warm-up: " << warm_up.news << " operator new, " << warm_up.eigen_mallocs << " Eigen mallocs, " << warm_up.mallocs
                     << " malloc calls; 5 later steps: " << steps.news << " operator new, " << steps.eigen_mallocs << " Eigen mallocs, "
                     << steps.mallocs << " malloc calls");
    CHECK(steps.news == 0);
    CHECK(steps.eigen_mallocs == 0);
    CHECK(steps.mallocs == 0);
    // The measured steps did the work.
    CHECK(trainer.step() == 6);
    CHECK(opt.steps() == 6);
    CHECK(std::isfinite(static_cast<double>(loss)));
    CHECK(std::isfinite(static_cast<double>(last)));
    CHECK_FALSE(net.parameters() == after_first);
    if (v.options.ema_decay > 0) {
        CHECK(trainer.ema().size() == net.parameter_count());
        CHECK_FALSE(trainer.ema() == ema_after_first);
    }
    if constexpr (labelled) {
        // 5 batches of labels reached the network, some (not all) of them dropped to ∅.
        CHECK(net.seen - seen0 == 5 * v.options.batch_size);
        CHECK(net.nulls - nulls0 > 0);
        CHECK(net.nulls - nulls0 < net.seen - seen0);
    }

    // step_on with a caller-owned batch of the same size reuses the buffers as well.
    Matrix<S> z(2, v.options.batch_size);
    Allocations on;
    if constexpr (labelled) {
        std::vector<int> labels(static_cast<std::size_t>(z.cols()));
        source.sample(z, std::span<int>(labels), rng);
        on = count_allocations([&] { last = trainer.step_on(z, fmd::Labels(labels), rng); });
        CHECK(net.seen - seen0 == 6 * v.options.batch_size);
    } else {
        source.sample(z, rng);
        on = count_allocations([&] { last = trainer.step_on(z, rng); });
    }
    CHECK(on.news == 0);
    CHECK(on.eigen_mallocs == 0);
    CHECK(on.mallocs == 0);
    CHECK(trainer.step() == 7);
}

}  // namespace

TEMPLATE_TEST_CASE("Trainer::train_step allocates nothing after the first step (AdamW, with/without EMA and clip_norm)", "[alloc][train]",
                   float, double) {
    using S = TestType;
    // The detectors fire on this file's own deliberate allocations.
    const Allocations control = count_allocations([] {
        Matrix<S> m = Matrix<S>::Ones(10, 10);
        volatile double sum = static_cast<double>(m.sum());
        (void)sum;
        if constexpr (counting_new) {
            std::vector<int> v(100, 1);
            volatile int x = v[50];
            (void)x;
        }
    });
    CHECK(control.eigen_mallocs >= 1);
    if constexpr (counting_new) CHECK(control.news >= 1);

    const auto mix = fmd_test::separated_blobs<S>();
    Matrix<S> points(2, 500);
    fmd::Rng rng(3);
    mix.sample(points, rng);
    const fmd::data::Dataset<S> dataset(points);
    for (const Variant& v : variants()) {
        fmd::nn::MLP<S> a(net_config, 1), b(net_config, 1);
        check_train_steps(a, mix, v);      // GaussianMixture as the source
        check_train_steps(b, dataset, v);  // a finite data set as the source
    }
}

TEMPLATE_TEST_CASE("Labelled Trainer::train_step (conditional MLP, label dropout) allocates nothing after the first step", "[alloc][train][guidance]",
                   float, double) {
    // theory.md §6.9: each label becomes ∅ with probability label_dropout, drawn inside the step;
    // the labelled forward adds the class embedding column by column.
    using S = TestType;
    const fmd::LabelledMixture<S> mix(fmd_test::separated_blobs<S>(), {0, 1, 2});
    Matrix<S> points(2, 500);
    std::vector<int> labels(500);
    fmd::Rng rng(3);
    mix.sample(points, std::span<int>(labels), rng);
    const fmd::data::LabelledDataset<S> dataset(points, labels);
    fmd::nn::MLPConfig config = net_config;
    config.num_classes = 3;
    for (Variant v : variants()) {
        v.options.label_dropout = 0.3;
        LabelCountingMLP<S> a(config, 1), b(config, 1);
        check_train_steps(a, dataset, v);  // data::LabelledDataset as the source
        check_train_steps(b, mix, v);      // LabelledMixture as the source
    }
}

TEMPLATE_TEST_CASE("Coupled training steps allocate nothing after the first (ExactOT, pool, labelled blocks; Sinkhorn; stored pairs)",
                   "[alloc][train][coupling]", float, double) {
    using S = TestType;
    const auto mix = fmd_test::separated_blobs<S>();
    auto measure = [&](auto& trainer, auto&& step) {
        step();  // sizes the pool, costs and solver buffers
        const Allocations later = count_allocations([&] {
            for (int i = 0; i < 4; ++i) step();
        });
        INFO("4 later steps: " << later.news << " operator new, " << later.eigen_mallocs << " Eigen mallocs, " << later.mallocs << " malloc calls");
        CHECK(later.news == 0);
        CHECK(later.eigen_mallocs == 0);
        CHECK(later.mallocs == 0);
        CHECK(trainer.step() == 5);
    };
    fmd::Rng rng(4);
    {
        fmd::nn::MLP<S> net(net_config, 1);
        fmd::nn::AdamW<S> opt(net.parameter_count());
        fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 48}, fmd::time_sampler::Uniform{},
                                    fmd::coupling::ExactOT<S>({.pool_factor = 2}));
        measure(trainer, [&] { trainer.train_step(mix, rng); });
    }
    {
        const fmd::LabelledMixture<S> labelled(mix, {0, 1, 2});
        fmd::nn::MLPConfig config = net_config;
        config.num_classes = 3;
        fmd::nn::MLP<S> net(config, 1);
        fmd::nn::AdamW<S> opt(net.parameter_count());
        fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 48}, fmd::time_sampler::Uniform{},
                                    fmd::coupling::ExactOT<S>{});
        // Every class appears in the first batch, so the per-class buffers are at full size.
        measure(trainer, [&] { trainer.train_step(labelled, rng); });
    }
    {
        fmd::nn::MLP<S> net(net_config, 1);
        fmd::nn::AdamW<S> opt(net.parameter_count());
        fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 32}, fmd::time_sampler::Uniform{},
                                    fmd::coupling::Sinkhorn<S>({.epsilon = 0.5, .tolerance = 1e-3}));
        measure(trainer, [&] { trainer.train_step(mix, rng); });
    }
    {
        fmd::train::PairSet<S> pairs;
        pairs.noise = fmd_test::normal<S>(2, 200, rng);
        pairs.data = fmd_test::normal<S>(2, 200, rng);
        fmd::nn::MLP<S> net(net_config, 1);
        fmd::nn::AdamW<S> opt(net.parameter_count());
        fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, {.batch_size = 32}, fmd::time_sampler::Discrete{2});
        measure(trainer, [&] { trainer.train_step(pairs, rng); });
    }
}

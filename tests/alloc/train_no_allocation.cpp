// train::Trainer::train_step allocates nothing once the first step has sized its batch buffers
// (trainer.hpp: "train_step allocates nothing once the first step has sized the batch buffers";
// the loop of theory.md §6: sample z, ε, t → x_t → forward → loss gradient (§6.7) → backward →
// clip → lr → AdamW step → EMA).
//
// The detectors are those of no_allocation.cpp, in the same executable:
//  1. its replacement global operator new counts every C++ heap allocation into
//     alloc_test::news (declared here, defined there; absent in sanitizer builds, which define
//     FMD_TEST_NO_NEW_COUNTER because ASan owns operator new);
//  2. EIGEN_RUNTIME_NO_MALLOC + an eigen_assert that counts failed malloc checks into
//     alloc_test::eigen_mallocs. The prelude below is token-for-token the one of
//     no_allocation.cpp: the inline counter and handlers are then the same entities in both
//     translation units, whichever copy of an out-of-line Eigen function the linker keeps.
// A warm-up step that must allocate (the trainer's and the network's buffers) shows the
// detectors see the trainer's own allocation paths, so the zeros below are not vacuous.
#define EIGEN_RUNTIME_NO_MALLOC 1

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace alloc_test {
inline long eigen_mallocs = 0;  // Eigen heap allocations while forbidden
[[noreturn]] inline void eigen_assertion_failed(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: Eigen assertion failed: %s\n", file, line, expr);
    std::abort();
}
inline void eigen_check_failed(const char* expr, const char* file, int line) {
    if (std::strstr(expr, "heap allocation is forbidden") != nullptr) ++eigen_mallocs;
    else eigen_assertion_failed(expr, file, line);
}
}  // namespace alloc_test
// Like assert: the handler runs only when the condition fails.
#define eigen_assert(x) ((x) ? static_cast<void>(0) : ::alloc_test::eigen_check_failed(#x, __FILE__, __LINE__))

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <fmd/fmd.hpp>

#ifndef FMD_TEST_NO_NEW_COUNTER
namespace alloc_test {
extern std::atomic<long> news;  // no_allocation.cpp's replacement operator new counts here
}
#endif

namespace {

using fmd::Matrix;
using fmd::Vector;
using LinearPath = fmd::GaussianPath<fmd::schedule::Linear>;

constexpr bool counting_new =
#ifdef FMD_TEST_NO_NEW_COUNTER
    false;
#else
    true;
#endif

struct Allocations {
    long news = 0;           // global operator new calls (0 when not counted)
    long eigen_mallocs = 0;  // Eigen heap allocations
};

long new_count() {
#ifdef FMD_TEST_NO_NEW_COUNTER
    return 0;
#else
    return alloc_test::news.load(std::memory_order_relaxed);
#endif
}

/// Runs f with Eigen's heap forbidden and returns the allocations it made. No Catch macro may
/// run inside f: Catch itself allocates while building messages.
template <class F>
Allocations count_allocations(F&& f) {
    const long news0 = new_count();
    const long eigen0 = alloc_test::eigen_mallocs;
    Eigen::internal::set_is_malloc_allowed(false);
    f();
    Eigen::internal::set_is_malloc_allowed(true);
    return {new_count() - news0, alloc_test::eigen_mallocs - eigen0};
}

template <class S>
fmd::GaussianMixture<S> blobs() {
    Matrix<S> mu(2, 3);
    mu << S(-2.0), S(2.0), S(0.5),  //
        S(-1.0), S(-1.0), S(2.0);
    Vector<S> sd(3), w(3);
    sd << S(0.3), S(0.4), S(0.25);
    w << 2, 3, 5;
    return {mu, sd, w};
}

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

template <class S, class Source>
void check_train_steps(const Source& source, const Variant& v) {
    INFO("options: " << v.name << (counting_new ? "" : " (operator new not counted in this build)"));
    // Width 64: Eigen's GEMM packing buffers stay on the stack (nn/mlp.hpp); wider layers take
    // them from the heap inside Eigen itself.
    fmd::nn::MLP<S> net({.dim = 2, .width = 64, .depth = 3}, 1);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = 3e-3});
    fmd::train::Trainer trainer(LinearPath{}, fmd::loss::cfm, net, opt, v.options);
    fmd::Rng rng(5);
    S loss = 0;

    // First step: sizes the batch, x_t / ε / pred / grad / t buffers and the MLP's workspaces.
    const Allocations warm_up = count_allocations([&] { loss = trainer.train_step(source, rng); });
    CHECK(warm_up.eigen_mallocs > 0);  // the detector sees the trainer's own allocations
    const Vector<S> after_first = net.parameters();
    const Vector<S> ema_after_first = trainer.ema();

    S last = 0;
    const Allocations steps = count_allocations([&] {
        for (int i = 0; i < 5; ++i) last = trainer.train_step(source, rng);
    });
    INFO("warm-up: " << warm_up.news << " operator new, " << warm_up.eigen_mallocs << " Eigen mallocs; 5 later steps: " << steps.news
                     << " operator new, " << steps.eigen_mallocs << " Eigen mallocs");
    CHECK(steps.news == 0);
    CHECK(steps.eigen_mallocs == 0);
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

    // step_on with a caller-owned batch of the same size reuses the buffers as well.
    Matrix<S> z(2, v.options.batch_size);
    source.sample(z, rng);
    const Allocations on = count_allocations([&] { last = trainer.step_on(z, rng); });
    CHECK(on.news == 0);
    CHECK(on.eigen_mallocs == 0);
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

    const auto mix = blobs<S>();
    Matrix<S> points(2, 500);
    fmd::Rng rng(3);
    mix.sample(points, rng);
    const fmd::data::Dataset<S> dataset(points);
    for (const Variant& v : variants()) {
        check_train_steps<S>(mix, v);      // GaussianMixture as the source
        check_train_steps<S>(dataset, v);  // a finite data set as the source
    }
}

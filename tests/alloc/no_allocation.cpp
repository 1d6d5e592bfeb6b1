// Hot paths allocate nothing (docs/architecture.md "Habits": a field writes into `out`, allocating
// nothing; steppers own their workspace, sized on first use, so steps allocate nothing).
//
// The detectors (operator new, Eigen's runtime malloc check, glibc malloc) are those of
// counter.hpp; the first test shows each of them fires on deliberate allocations ("the counters
// are real").
#include "counter.hpp"

#include <atomic>
#include <cmath>
#include <new>
#include <vector>

#include <fmd/fmd.hpp>

namespace {

namespace sch = fmd::schedule;
namespace sol = fmd::solver;
using fmd::Matrix;
using fmd::Vector;
using alloc_test::Allocations;
using alloc_test::count_allocations;
using alloc_test::counting_malloc;
using alloc_test::counting_new;

volatile double sink = 0;

/// 2-D (unrolled kernel) and 5-D (generic kernel) mixtures.
template <class S>
fmd::GaussianMixture<S> mixture(int d) {
    Matrix<S> mu(d, 3);
    for (int k = 0; k < 3; ++k)
        for (int i = 0; i < d; ++i) mu(i, k) = S(std::cos(1.7 * k + 0.9 * i) * 2.0);
    Vector<S> sd(3), w(3);
    sd << S(0.3), S(0.6), S(1.0);
    w << 5, 3, 2;
    return {mu, sd, w};
}

}  // namespace

TEST_CASE("The allocation counters are real", "[alloc]") {
    if constexpr (counting_new) {
        const auto single = count_allocations([] {
            int* volatile p = new int(7);
            sink = *p;
            delete p;
        });
        CHECK(single.news == 1);
        struct alignas(64) Wide {
            double v[8];
        };
        const auto forms = count_allocations([] {
            double* volatile a = new double[16];
            Wide* volatile b = new Wide;
            int* volatile c = new (std::nothrow) int(3);
            Wide* volatile e = new Wide[2];
            sink = a[0] * 0 + b->v[0] * 0 + *c;
            delete[] a;
            delete b;
            delete c;
            delete[] e;
        });
        CHECK(forms.news == 4);
        const auto vec = count_allocations([] {
            std::vector<double> v(100, 1.0);
            sink = v[50];
        });
        CHECK(vec.news >= 1);
    } else {
        WARN("FMD_TEST_NO_NEW_COUNTER: operator new and malloc are not counted in this build; Eigen's check still runs");
    }
    // Eigen's runtime check fires on a deliberate dynamic allocation.
    const auto eigen = count_allocations([] {
        Matrix<double> m = Matrix<double>::Ones(10, 10);
        sink = m.sum();
    });
    CHECK(eigen.eigen_mallocs >= 1);
    // The malloc interposer sees Eigen's allocation (std::malloc) and operator new's.
    if constexpr (counting_malloc) {
        CHECK(eigen.mallocs >= 1);
        const auto both = count_allocations([] {
            std::vector<double> v(100, 1.0);
            sink = v[50];
        });
        CHECK(both.mallocs >= 1);
    }
    // ... and stays silent on fixed-size work and on existing storage.
    Matrix<double> existing = Matrix<double>::Ones(10, 10);
    const auto none = count_allocations([&] {
        existing *= 2.0;
        Eigen::Matrix2d fixed = Eigen::Matrix2d::Identity();
        sink = existing.sum() + fixed.trace();
    });
    CHECK_NO_ALLOCATIONS(none);
}

namespace {
struct StepAllocations {
    Allocations warm_up, measured;
};
template <class St, class F, class S>
StepAllocations ode_steps(F& u, Matrix<S>& x) {
    St stepper;
    // Warm-up: sizes the stage buffers. It must allocate — this shows the detectors see the
    // steppers' own buffers, so the zero below is not vacuous.
    const auto warm_up = count_allocations([&] { stepper.step(u, fmd::Out<S>(x), 0.1, 0.05); });
    return {warm_up, count_allocations([&] {
        // New times: the oracle recomputes its per-time cache (prepare) inside the region.
        stepper.step(u, fmd::Out<S>(x), 0.15, 0.05);
        stepper.step(u, fmd::Out<S>(x), 0.2, 0.05);
        stepper.step(u, fmd::Out<S>(x), 0.25, 0.05);
    })};
}

#define CHECK_STEPS_ALLOCATE_ONLY_ON_WARM_UP(result)             \
    do {                                                          \
        const StepAllocations r_ = (result);                      \
        CHECK(r_.warm_up.eigen_mallocs > 0);                      \
        CHECK_NO_ALLOCATIONS(r_.measured);                        \
    } while (false)
}  // namespace

TEMPLATE_TEST_CASE("ODE and SDE steps on oracle fields allocate nothing after a warm-up step", "[alloc]", float, double) {
    using S = TestType;
    const fmd::GaussianPath<sch::Linear> path;
    for (int d : {2, 5}) {
        INFO("dimension " << d);
        fmd::MixtureOracle oracle(path, mixture<S>(d));
        auto u = oracle.velocity_field();
        auto s = oracle.score_field();
        fmd::Rng rng(1);
        Matrix<S> x(d, 64);
        fmd::fill_normal(x, rng);
        const Matrix<S> start = x;

        CHECK_STEPS_ALLOCATE_ONLY_ON_WARM_UP((ode_steps<sol::Euler<S>>(u, x)));
        CHECK_STEPS_ALLOCATE_ONLY_ON_WARM_UP((ode_steps<sol::Midpoint<S>>(u, x)));
        CHECK_STEPS_ALLOCATE_ONLY_ON_WARM_UP((ode_steps<sol::Heun<S>>(u, x)));
        CHECK_STEPS_ALLOCATE_ONLY_ON_WARM_UP((ode_steps<sol::RK4<S>>(u, x)));
        CHECK(x != start);  // the measured steps did work
        CHECK(x.allFinite());

        // Euler–Maruyama on the velocity field, on the SdeDrift adapter (theory.md §7.6) and on
        // SdeDriftFromScore (owns a buffer, sized by the warm-up call).
        sol::EulerMaruyama<S> em{fmd::ConstantSigma(0.7)};
        fmd::SdeDrift drift(path, u, fmd::ConstantSigma(0.7));
        fmd::SdeDriftFromScore<S, decltype(u), decltype(s), fmd::ConstantSigma> drift2(u, s, fmd::ConstantSigma(0.7));
        const auto sde_warm_up = count_allocations([&] {
            em.step(u, fmd::Out<S>(x), 0.3, 0.01, rng);
            em.step(drift, fmd::Out<S>(x), 0.31, 0.01, rng);
            em.step(drift2, fmd::Out<S>(x), 0.32, 0.01, rng);
        });
        CHECK(sde_warm_up.eigen_mallocs >= 2);  // EM's buffer and SdeDriftFromScore's buffer
        const Matrix<S> before = x;
        const auto sde = count_allocations([&] {
            em.step(u, fmd::Out<S>(x), 0.33, 0.01, rng);
            em.step(drift, fmd::Out<S>(x), 0.34, 0.01, rng);
            em.step(drift2, fmd::Out<S>(x), 0.35, 0.01, rng);
        });
        CHECK_NO_ALLOCATIONS(sde);
        CHECK(x != before);
        // Adapters and the other oracle fields, called directly.
        auto u_from_s = fmd::score_to_velocity(path, s);
        Matrix<S> out(d, 64);
        fmd::Row<S> row(64);
        oracle.x1(x, 0.4, out);
        const auto fields = count_allocations([&] {
            u_from_s(fmd::In<S>(x), 0.45, fmd::Out<S>(out));
            oracle.score(x, 0.5, out);
            oracle.x1(x, 0.55, out);
            oracle.epsilon(x, 0.6, out);
            oracle.log_density(x, 0.65, row);
            oracle.divergence(x, 0.7, row);
        });
        CHECK_NO_ALLOCATIONS(fields);
    }
}

TEMPLATE_TEST_CASE("loss::value_and_gradient allocates nothing", "[alloc][loss]", float, double) {
    // theory.md §6.7: L = (1/(N d)) Σ ‖pred − target‖², ∂L/∂pred = 2(pred − target)/(N d).
    using S = TestType;
    const fmd::GaussianPath<sch::Cosine> path;
    fmd::Rng rng(2);
    Matrix<S> pred(3, 128), z(3, 128), eps(3, 128), grad(3, 128);
    fmd::Row<S> t(128);
    fmd::fill_normal(pred, rng);
    fmd::fill_normal(z, rng);
    fmd::fill_normal(eps, rng);
    fmd::time_sampler::Uniform{0.0, 0.999}(t, rng);
    S value = 0;
    for (const auto& loss_case : {0, 1, 2, 3}) {
        INFO("loss " << loss_case);
        const auto counts = count_allocations([&] {
            switch (loss_case) {
                case 0: value = fmd::loss::value_and_gradient(fmd::loss::cfm, path, pred, z, eps, t, grad); break;
                case 1: value = fmd::loss::value_and_gradient(fmd::loss::csm, path, pred, z, eps, t, grad); break;
                case 2: value = fmd::loss::value_and_gradient(fmd::loss::epsilon, path, pred, z, eps, t, grad); break;
                default: value = fmd::loss::value_and_gradient(fmd::loss::x1, path, pred, z, eps, t, grad); break;
            }
        });
        CHECK_NO_ALLOCATIONS(counts);
        CHECK(value > S(0));
        CHECK(grad.allFinite());
    }
    // In-place: grad may be pred itself.
    const auto in_place = count_allocations([&] { value = fmd::loss::value_and_gradient(fmd::loss::cfm, path, pred, z, eps, t, pred); });
    CHECK_NO_ALLOCATIONS(in_place);
}

namespace {
template <class St, class F>
Allocations ode_integrate(F& u, Matrix<double>& x, const std::vector<double>& grid) {
    St stepper;
    stepper.step(u, fmd::Out<double>(x), grid[0], grid[1] - grid[0]);  // warm-up step
    return count_allocations([&] { fmd::integrate(u, x, grid, stepper, fmd::NoObserver{}); });
}
}  // namespace

TEST_CASE("A full integrate loop over a pre-built grid allocates nothing after a warm-up step", "[alloc]") {
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, mixture<double>(2));
    auto u = oracle.velocity_field();
    const auto grid = fmd::grid::uniform(50);
    const auto sde_grid = fmd::grid::uniform(50, 0.0, 0.99);
    fmd::Rng rng(3);
    Matrix<double> x(2, 128);
    fmd::fill_normal(x, rng);
    const Matrix<double> start = x;
    CHECK_NO_ALLOCATIONS(ode_integrate<sol::Euler<double>>(u, x, grid));
    x = start;
    CHECK_NO_ALLOCATIONS(ode_integrate<sol::Midpoint<double>>(u, x, grid));
    x = start;
    CHECK_NO_ALLOCATIONS(ode_integrate<sol::Heun<double>>(u, x, grid));
    x = start;
    CHECK_NO_ALLOCATIONS(ode_integrate<sol::RK4<double>>(u, x, grid));
    CHECK((x - start).norm() > 1.0);

    // SDE: integrate with the SdeDrift adapter, and fmd::sample, which builds it internally.
    sol::EulerMaruyama<double> em{fmd::ConstantSigma(0.5)};
    fmd::SdeDrift drift(path, u, em.sigma_policy());
    x = start;
    em.step(drift, fmd::Out<double>(x), 0.0, 0.01, rng);
    CHECK_NO_ALLOCATIONS(count_allocations([&] { fmd::integrate(drift, x, sde_grid, em, rng, fmd::NoObserver{}); }));
    x = start;
    CHECK_NO_ALLOCATIONS(count_allocations([&] { fmd::sample(path, u, x, sde_grid, em, rng, fmd::NoObserver{}); }));
    CHECK(x.allFinite());
    // A CheckFinite observer costs nothing either.
    x = start;
    CHECK_NO_ALLOCATIONS(count_allocations([&] { fmd::sample(path, u, x, sde_grid, em, rng, fmd::CheckFinite{}); }));
    // Multistep samplers: the first solve sizes history and bootstrap buffers; a second solve
    // (reset, AB3's Heun bootstrap, history refill, SDE noise) allocates nothing.
    sol::AB3<double> ab3;
    sol::DpmSolver2M dpm(path);
    sol::DpmSolver2MSde dpm_sde(path);
    auto multistep = [&] {
        fmd::integrate(u, x, grid, ab3, fmd::NoObserver{});
        fmd::integrate(u, x, grid, dpm, fmd::NoObserver{});
        fmd::integrate(u, x, grid, dpm_sde, rng, fmd::NoObserver{});
    };
    x = start;
    const auto multistep_warm_up = count_allocations(multistep);
    CHECK(multistep_warm_up.eigen_mallocs > 0);
    x = start;
    CHECK_NO_ALLOCATIONS(count_allocations(multistep));
    CHECK(x.allFinite());
    // Control: a recorder allocates, and the counters see it.
    fmd::TrajectoryRecorder<double> recorder(4);
    x = start;
    const auto recorded = count_allocations([&] { fmd::sample(path, u, x, sde_grid, em, rng, recorder); });
    CHECK(recorded.eigen_mallocs + recorded.news > 0);
    CHECK(recorder.states.size() == sde_grid.size());
}

TEMPLATE_TEST_CASE("Dopri5 allocates nothing after the first solve on the same shape", "[alloc][dopri5]", float, double) {
    // The first solve sizes the nine stage/state buffers; later solves (output grid, either
    // direction, FSAL pointer swaps, rejected steps included) reuse them.
    using S = TestType;
    const fmd::GaussianPath<sch::Linear> path;
    fmd::MixtureOracle oracle(path, mixture<S>(2));
    auto u = oracle.velocity_field();
    fmd::Rng rng(8);
    Matrix<S> x(2, 64);
    fmd::fill_normal(x, rng);
    const Matrix<S> start = x;
    sol::Dopri5<S> dopri({.rtol = 1e-5, .atol = 1e-5, .first_step = 0.5});  // too large: rejections
    const std::vector<double> forward{0.0, 0.3, 0.7, 1.0}, backward{1.0, 0.5, 0.0};
    fmd::SolveStats s;
    const auto first = count_allocations([&] { s = dopri.integrate(u, x, forward); });
    CHECK(first.eigen_mallocs > 0);
    x = start;
    CHECK_NO_ALLOCATIONS(count_allocations([&] {
        s = dopri.integrate(u, x, forward);
        dopri.integrate(u, x, backward);
    }));
    CHECK(s.rejected > 0);
    CHECK(x.allFinite());
}

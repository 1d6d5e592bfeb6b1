// One sampler step on the Gaussian-mixture oracle (theory.md §8.1), library vs a hand-written
// loop doing the same arithmetic. The ratio library/hand-written is the stepper's overhead.
#include <cmath>
#include <vector>

#include <benchmark/benchmark.h>

#include <fmd/fmd.hpp>

namespace {

using S = double;
constexpr double t_step = 0.37, h = 0.01;

fmd::GaussianMixture<S> mixture() { return fmd::GaussianMixture<S>::ring(8, 4.0, 0.35); }

fmd::Matrix<S> start(long n) {
    fmd::Rng rng(1);
    fmd::Matrix<S> x(2, n);
    fmd::fill_normal(x, rng);
    return x;
}

void BM_EulerStep_Library(benchmark::State& state) {
    fmd::GaussianPath<fmd::schedule::Linear> path;
    fmd::MixtureOracle oracle(path, mixture());
    auto u = oracle.velocity_field();
    fmd::solver::Euler<S> euler;
    fmd::Matrix<S> x = start(state.range(0));
    euler.step(u, x, t_step, h);  // sizes the workspace
    for (auto _ : state) {
        euler.step(u, x, t_step, h);
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

// The same Euler step written out by hand: per-time constants once, then per column the
// posterior weights w_k (softmax of ℓ_k), u = Σ_k w_k (a_k + c_k x) and x += h u.
void BM_EulerStep_HandWritten(benchmark::State& state) {
    const auto mix = mixture();
    const int K = static_cast<int>(mix.components()), d = 2;
    const double al = t_step, be = 1 - t_step, da = 1, db = -1;
    std::vector<double> log_norm(K), inv_v(K), c(K), mu_t(K * d), a(K * d), w(K);
    for (int k = 0; k < K; ++k) {
        const double s2 = mix.stds()(k) * mix.stds()(k), v = al * al * s2 + be * be;
        inv_v[k] = 1 / v;
        c[k] = (al * da * s2 + be * db) / v;
        log_norm[k] = std::log(mix.weights()(k)) - 0.5 * d * std::log(2 * M_PI * v);
        for (int i = 0; i < d; ++i) {
            mu_t[k * d + i] = al * mix.means()(i, k);
            a[k * d + i] = (da - c[k] * al) * mix.means()(i, k);
        }
    }
    fmd::Matrix<S> x = start(state.range(0));
    std::vector<double> u(static_cast<std::size_t>(x.size()));
    for (auto _ : state) {
        double* px = x.data();
        const long n = x.cols();
        for (long j = 0; j < n; ++j) {
            const double* xj = px + j * d;
            double best = -INFINITY;
            for (int k = 0; k < K; ++k) {
                double r2 = 0;
                for (int i = 0; i < d; ++i) r2 += (xj[i] - mu_t[k * d + i]) * (xj[i] - mu_t[k * d + i]);
                w[k] = log_norm[k] - 0.5 * inv_v[k] * r2;
                best = std::max(best, w[k]);
            }
            double total = 0;
            for (int k = 0; k < K; ++k) total += (w[k] = std::exp(w[k] - best));
            double wc = 0;
            double* uj = u.data() + j * d;
            for (int i = 0; i < d; ++i) uj[i] = 0;
            for (int k = 0; k < K; ++k) {
                const double wk = w[k] / total;
                wc += wk * c[k];
                for (int i = 0; i < d; ++i) uj[i] += wk * a[k * d + i];
            }
            for (int i = 0; i < d; ++i) uj[i] += wc * xj[i];
        }
        for (long i = 0; i < x.size(); ++i) px[i] += h * u[static_cast<std::size_t>(i)];
        benchmark::DoNotOptimize(x.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(BM_EulerStep_Library)->RangeMultiplier(4)->Range(1 << 10, 1 << 16)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EulerStep_HandWritten)->RangeMultiplier(4)->Range(1 << 10, 1 << 16)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();

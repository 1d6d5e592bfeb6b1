// Example 06: one-step and few-step generation on the checkerboard (theory.md §9.3–§9.5).
//
// Trains five models of the same size and compares them at 1, 2, 4 and 8 network evaluations:
//   CFM          the reference: plain flow matching, sampled by Euler (and at 100 NFE, the baseline)
//   MeanFlow     a two-time network ū(x, t, r) trained on the MeanFlow identity (one extra tangent
//                pass per step), sampled by jumps x ← x + (r − t)·ū(x, t, r)
//   shortcut     the same two-time network trained on step-size self-consistency
//   CT           consistency training without a teacher (improved recipe), multistep sampling
//   CD           consistency distillation from the CFM model, Heun as the teacher's solver
// Prints the filled-square fraction and sliced W2 to fresh data per family and NFE, with training
// times; writes 06_few_step.png (rows: families, columns: NFE). Every sampler here takes its NFE
// from an fmd time grid; copy a family's lines to train your own few-step model.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"

using S = float;
using Net = fmd::nn::MLP<S>;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Trains `net` with a loss or objective; returns the seconds taken.
template <class Objective>
double train(const char* name, Net& net, Objective objective, long steps, long batch, double lr, fmd::Rng& rng) {
    const fmd::data::Checkerboard board;
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr});
    fmd::train::Trainer trainer(Path{}, std::move(objective), net, opt, {.batch_size = batch});
    trainer.set_lr_schedule(fmd::nn::WarmupCosine{.peak_lr = lr, .warmup_steps = steps / 20, .total_steps = steps, .min_lr = lr / 20});
    std::printf("training %s: %ld steps at batch %ld\n", name, steps, batch);
    fmd::train::Progress progress(std::max(1L, steps / 10));
    const auto start = std::chrono::steady_clock::now();
    fmd::train::fit(trainer, board, rng, steps, progress);
    return seconds_since(start);
}

/// Consistency sampling levels for k evaluations: 0, then halving the remaining distance to 1.
std::vector<double> consistency_levels(long k) {
    std::vector<double> t;
    for (long i = 0; i < k; ++i) t.push_back(1.0 - std::pow(0.5, static_cast<double>(i)));
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    cli::Args args(argc, argv);
    if (args.help()) {
        std::puts("06_few_step [--out DIR] [--steps 8000] [--batch 256] [--width 256] [--depth 3] [--lr 1e-3]\n"
                  "            [--meanflow-fraction 0.75] [--meanflow-p 0.75] [--samples 2000] [--seed 0]");
        return 0;
    }
    const std::string out = args.str("out", ".");
    const long steps = args.integer("steps", 8000), batch = args.integer("batch", 256);
    const long width = args.integer("width", 256), depth = args.integer("depth", 3), n = args.integer("samples", 2000);
    const double lr = args.real("lr", 1e-3), fraction = args.real("meanflow-fraction", 0.75), power = args.real("meanflow-p", 0.75);
    const auto seed = static_cast<unsigned long>(args.integer("seed", 0));
    args.finish();
    if (steps < 1 || batch < 1 || width < 1 || depth < 0 || n < 2) cli::Args::fail("--steps, --batch, --width must be >= 1, --depth >= 0, --samples >= 2");
    if (!(fraction >= 0 && fraction <= 1) || !(power >= 0)) cli::Args::fail("--meanflow-fraction must lie in [0, 1], --meanflow-p >= 0");

    fmd::Rng rng(seed);
    const fmd::data::Checkerboard board;
    // SiLU and a time embedding smooth in t (frequencies up to 100): MeanFlow differentiates the
    // network in t, and few-step jumps need a smooth map.
    const fmd::nn::MLPConfig one{.dim = 2, .width = width, .depth = depth, .activation = fmd::nn::Activation::silu, .time = {.scale = 100.0}};
    fmd::nn::MLPConfig two = one;
    two.two_times = true;
    const auto total_start = std::chrono::steady_clock::now();

    Net cfm(one, rng), meanflow(two, rng), shortcut(two, rng), ct(one, rng), cd(one, rng);
    std::vector<double> secs;
    secs.push_back(train("CFM", cfm, fmd::loss::cfm, steps, batch, lr, rng));
    secs.push_back(train("MeanFlow", meanflow, fmd::flowmap::MeanFlow<S>({.fraction_unequal = fraction, .p = power}), steps, batch, lr, rng));
    secs.push_back(train("shortcut", shortcut, fmd::flowmap::Shortcut<S>({.max_steps = 128}), steps, batch, lr, rng));
    secs.push_back(train("CT", ct, fmd::flowmap::ConsistencyTraining<S>({.s0 = 10, .s1 = 640, .total_steps = steps}), steps, batch, lr, rng));
    {
        Net teacher = cfm;  // the distilled student starts from the teacher's weights
        cd = cfm;
        fmd::flowmap::ConsistencyDistillation<S, Net, fmd::solver::Heun<S>> distill(teacher, {}, {.s0 = 18});
        secs.push_back(train("CD (teacher: CFM, Heun)", cd, std::move(distill), steps, batch, lr / 2, rng));
    }

    // Quality against NFE, from the same noise.
    const std::vector<long> nfes = {1, 2, 4, 8};
    fmd::Matrix<S> noise(2, n), fresh(2, n), work;
    fmd::fill_normal(noise, rng);
    board.sample(fresh, rng);
    auto sw = [&](const fmd::Matrix<S>& a) {
        fmd::Rng proj(5);
        return fmd::metrics::sliced_wasserstein(a, fresh, 128, proj);
    };
    fmd::solver::Euler<S> euler;
    fmd::flowmap::ConsistencyFlowMap<S, Net, Path> ct_map(ct, Path{}), cd_map(cd, Path{});
    const char* names[] = {"CFM", "MeanFlow", "shortcut", "CT", "CD"};
    auto generate = [&](int family, long k, fmd::Matrix<S>& x) {
        x = noise;
        const auto grid = fmd::grid::uniform(k);
        fmd::Rng renoise(11);
        switch (family) {
            case 0: fmd::sample(cfm, x, grid, euler); break;
            case 1: fmd::sample_flow_map(meanflow, x, grid, work); break;
            case 2: fmd::sample_flow_map(shortcut, x, grid, work); break;
            case 3: fmd::flowmap::sample_consistency(ct, Path{}, x, consistency_levels(k), renoise, work); break;
            default: fmd::flowmap::sample_consistency(cd, Path{}, x, consistency_levels(k), renoise, work); break;
        }
    };
    std::printf("\nfilled-square fraction / sliced W2 to fresh data, from the same %ld noise points:\n", n);
    std::printf("| %-12s | train s |", "family");
    for (long k : nfes) std::printf(" %ld NFE          |", k);
    std::printf("\n|---|---|");
    for (std::size_t i = 0; i < nfes.size(); ++i) std::printf("---|");
    std::printf("\n");
    const double lim = 4.5;
    std::vector<plot::Canvas> panels;
    std::vector<std::string> titles;
    fmd::Matrix<S> x;
    for (int f = 0; f < 5; ++f) {
        std::printf("| %-12s | %7.0f |", names[f], secs[static_cast<std::size_t>(f)]);
        for (long k : nfes) {
            generate(f, k, x);
            std::printf(" %.3f / %.3f  |", board.filled_fraction(x), sw(x));
            panels.emplace_back(200, 200, -lim, lim, -lim, lim);
            panels.back().frame();
            panels.back().scatter(x, plot::blue, 1.0, 0.45);
            titles.push_back(std::string(names[f]) + ", " + std::to_string(k) + " NFE");
        }
        std::printf("\n");
    }
    x = noise;
    fmd::sample(cfm, x, fmd::grid::uniform(100), euler);
    std::printf("CFM at 100 NFE (Euler): %.3f / %.3f; deterministic consistency jumps (ConsistencyFlowMap) at 2 NFE: CT %.3f, CD %.3f;\n",
                board.filled_fraction(x), sw(x), [&] {
                    fmd::Matrix<S> y = noise;
                    fmd::sample_flow_map(ct_map, y, fmd::grid::uniform(2), work);
                    return board.filled_fraction(y);
                }(),
                [&] {
                    fmd::Matrix<S> y = noise;
                    fmd::sample_flow_map(cd_map, y, fmd::grid::uniform(2), work);
                    return board.filled_fraction(y);
                }());
    std::printf("fresh data: filled %.3f; N(0, I): filled %.3f, SW2 %.3f\n", board.filled_fraction(fresh), board.filled_fraction(noise), sw(noise));
    plot::save_panels(panels, titles, static_cast<int>(nfes.size()), out + "/06_few_step.png");
    std::printf("wrote %s/06_few_step.png (%.0f s in all)\n", out.c_str(), seconds_since(total_start));
    return 0;
}

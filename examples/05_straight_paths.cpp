// Example 05: straight paths on the checkerboard (theory.md §9.1, §9.2, §9.6).
//
// Trains four flows of the same network and compares them at 1 to 100 Euler steps:
//   I-CFM      independent noise–data pairs (the usual conditional flow matching);
//   OT-CFM     each batch's noise paired with its data by the exact optimal assignment;
//   2-RF       2-rectified flow: I-CFM's own ODE pairs (ε, Φ(ε)) as a fixed coupling, trained from
//              I-CFM's weights (reflow);
//   distilled  2-RF distilled into one step: its ODE pairs, trained only at t = 0 so that
//              ε + u(ε, 0) ≈ Φ(ε).
// Prints, per flow, the filled-square fraction and sliced W2 to fresh data at NFE 1, 2, 4, 8, 100
// (Euler), and the straightness S = ∫ E‖(X1 − X0) − u_t(X_t)‖² dt with its standard error; writes
// the samples, scores and trajectories as .npy files, from which examples/plots/05_straight_paths.py
// draws 05_samples.png (rows: flows; columns: NFE) and 05_trajectories.png. Copy it to straighten your
// own flow: the coupling is one template argument of the Trainer, reflow is generate_pairs + a
// PairSet as the data source.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "common/cli.hpp"
#include "common/npy.hpp"

using S = float;
using Net = fmd::nn::MLP<S>;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Trains `net` for `steps` steps on `source` with the given time sampler and coupling; returns steps/s.
template <class Source, class Times, class Coupling>
double train(const char* name, Net& net, const Source& source, long steps, long batch, double lr, Times times, Coupling coupling, fmd::Rng& rng) {
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr});
    fmd::train::Trainer trainer(Path{}, fmd::loss::cfm, net, opt, {.batch_size = batch}, times, coupling);
    trainer.set_lr_schedule(fmd::nn::WarmupCosine{.peak_lr = lr, .warmup_steps = steps / 20, .total_steps = steps, .min_lr = lr / 20});
    std::printf("training %s: %ld steps at batch %ld\n", name, steps, batch);
    fmd::train::Progress progress(std::max(1L, steps / 10));
    const auto start = std::chrono::steady_clock::now();
    fmd::train::fit(trainer, source, rng, steps, progress);
    return static_cast<double>(steps) / seconds_since(start);
}

/// ODE pairs (ε, Φ(ε)) of a trained flow: Heun with 50 steps (100 NFE).
fmd::train::PairSet<S> pairs_of(const char* name, Net& net, long count, fmd::Rng& rng) {
    fmd::solver::Heun<S> heun;
    fmd::ProgressLine progress(std::string("pairs of ") + name, count, 0, "pairs");
    auto pairs = fmd::train::generate_pairs(net, heun, fmd::grid::uniform(50), count, 2, rng, std::max(1L, count / 50), std::ref(progress));
    progress.finish();
    return pairs;
}

}  // namespace

int main(int argc, char** argv) {
    cli::App app("Example 05: straight paths on the checkerboard: I-CFM, OT-CFM, 2-rectified flow and its one-step distillation");
    std::string out = ".";
    long steps = 8000, reflow_steps = 8000, distill_steps = 6000, batch = 256, width = 256, depth = 3, n_pairs = 40000, n = 2000;
    double lr = 1e-3;
    unsigned long seed = 0;
    app.add_option("--out", out, "directory for the results (and the pictures drawn from them)");
    app.add_option("--steps", steps, "I-CFM and OT-CFM training steps")->check(CLI::PositiveNumber);
    app.add_option("--reflow-steps", reflow_steps, "2-rectified-flow training steps")->check(CLI::PositiveNumber);
    app.add_option("--distill-steps", distill_steps, "one-step distillation steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--width", width, "MLP width")->check(CLI::PositiveNumber);
    app.add_option("--depth", depth, "hidden blocks")->check(CLI::NonNegativeNumber);
    app.add_option("--lr", lr, "AdamW peak learning rate")->check(CLI::PositiveNumber);
    app.add_option("--pairs", n_pairs, "ODE pairs for reflow and distillation")->check(CLI::PositiveNumber);
    app.add_option("--samples", n, "points per evaluation")->check(CLI::Range(2L, 10'000'000L));
    app.add_option("--seed", seed, "random seed");
    cli::parse(app, argc, argv);

    fmd::Rng rng(seed);
    const fmd::data::Checkerboard board;
    // SiLU and a time embedding smooth in t (frequencies up to 100): a flow a few steps can follow.
    const fmd::nn::MLPConfig config{.dim = 2, .width = width, .depth = depth, .activation = fmd::nn::Activation::silu, .time = {.scale = 100.0}};
    const auto total_start = std::chrono::steady_clock::now();

    Net icfm(config, rng), otcfm(config, rng);
    const fmd::time_sampler::Uniform uniform;
    const double icfm_rate = train("I-CFM", icfm, board, steps, batch, lr, uniform, fmd::coupling::Independent{}, rng);
    const double ot_rate = train("OT-CFM", otcfm, board, steps, batch, lr, uniform, fmd::coupling::ExactOT<S>{}, rng);

    // Reflow: I-CFM's ODE pairs; 2-RF starts from I-CFM's weights.
    const auto icfm_pairs = pairs_of("I-CFM", icfm, n_pairs, rng);
    Net rf2 = icfm;
    train("2-RF", rf2, icfm_pairs, reflow_steps, batch, lr / 2, uniform, fmd::coupling::Independent{}, rng);
    // Distillation: 2-RF's ODE pairs, at t = 0 only (one Euler step).
    const auto rf2_pairs = pairs_of("2-RF", rf2, n_pairs, rng);
    Net one_step = rf2;
    train("2-RF distilled to 1 step", one_step, rf2_pairs, distill_steps, batch, lr / 2, fmd::time_sampler::Discrete{1}, fmd::coupling::Independent{}, rng);

    // The cost of the exact assignment at this batch size, against a training step.
    {
        fmd::coupling::ExactOT<S> ot;
        fmd::Matrix<S> pool(2, batch), z(2, batch), eps(2, batch);
        const int reps = 20;
        double secs = 0;
        for (int r = 0; r < reps; ++r) {
            fmd::fill_normal(pool, rng);
            board.sample(z, rng);
            const auto start = std::chrono::steady_clock::now();
            ot.couple(pool, z, {}, eps, rng);
            secs += seconds_since(start);
        }
        std::printf("\nexact OT assignment at batch %ld: %.2f ms per batch; a training step: I-CFM %.2f ms, OT-CFM %.2f ms\n", batch,
                    1e3 * secs / reps, 1e3 / icfm_rate, 1e3 / ot_rate);
    }

    // Quality against NFE, and straightness.
    struct Flow {
        const char* name;
        Net* net;
    };
    const std::vector<Flow> flows = {{"I-CFM", &icfm}, {"OT-CFM", &otcfm}, {"2-RF", &rf2}, {"distilled", &one_step}};
    const std::vector<long> nfes = {1, 2, 4, 8, 100};
    fmd::Matrix<S> noise(2, n), fresh(2, n);
    fmd::fill_normal(noise, rng);
    board.sample(fresh, rng);
    fmd::solver::Euler<S> euler;
    auto sw = [&](const fmd::Matrix<S>& a) {
        fmd::Rng proj(5);
        return fmd::metrics::sliced_wasserstein(a, fresh, 128, proj);
    };
    std::printf("\nfilled-square fraction / sliced W2 to fresh data, Euler from the same %ld noise points:\n", n);
    std::printf("%-16s", "flow");
    for (long k : nfes) std::printf("  %9ld NFE  ", k);
    std::printf("  straightness S\n");
    // Results for the plotting script: samples as (flows x NFEs, 2, n), scores as flows x NFEs.
    const std::string dir = out + "/05_straight_paths";
    std::vector<fmd::Matrix<S>> samples;
    Eigen::MatrixXd filled(flows.size(), nfes.size()), sw2(flows.size(), nfes.size());
    std::vector<double> straightness;
    for (std::size_t f = 0; f < flows.size(); ++f) {
        std::printf("%-16s", flows[f].name);
        for (std::size_t k = 0; k < nfes.size(); ++k) {
            fmd::Matrix<S> x = noise;
            fmd::sample(*flows[f].net, x, fmd::grid::uniform(nfes[k]), euler);
            filled(f, k) = board.filled_fraction(x);
            sw2(f, k) = sw(x);
            std::printf("  %.3f / %.3f", filled(f, k), sw2(f, k));
            samples.push_back(x);
        }
        const auto s = fmd::metrics::straightness(*flows[f].net, noise, fmd::grid::uniform(100), euler);
        std::printf("  %.4f ± %.4f\n", s.value, s.standard_error);
        straightness.push_back(s.value);
    }
    std::printf("%-16s  fresh data: filled %.3f; N(0, I): filled %.3f, SW2 %.3f\n", "", board.filled_fraction(fresh), board.filled_fraction(noise),
                sw(noise));
    npy::save(dir + "/samples.npy", samples);
    npy::save(dir + "/filled.npy", filled);
    npy::save(dir + "/sw2.npy", sw2);
    npy::save(dir + "/fresh.npy", fresh);

    // Trajectories (100 Euler steps, 60 paths) of the three flows: the straightening is visible.
    for (std::size_t f = 0; f < 3; ++f) {
        fmd::TrajectoryRecorder<S> paths(60);
        fmd::Matrix<S> x = noise;
        fmd::sample(*flows[f].net, x, fmd::grid::uniform(100), euler, paths);
        npy::save(dir + "/trajectories_" + std::to_string(f) + ".npy", paths.states);
    }
    std::vector<std::string> names;
    for (const Flow& f : flows) names.emplace_back(f.name);
    npy::Json info;
    info.add("flows", names).add("nfes", nfes).add("straightness", straightness);
    info.save(dir + "/info.json");
    std::printf("wrote %s/ (%.0f s in all)\nplot: python3 examples/plots/05_straight_paths.py %s\n", dir.c_str(), seconds_since(total_start), out.c_str());
    return 0;
}

// Example 02: the course's checkerboard, trained end to end on the CPU (seed workload of
// cfm-from-first-principles: MLP 2→512 (+ sinusoidal time embedding)→5×(512, ReLU)→2,
// AdamW lr 1e-4, batch 64, x_t = (1 − t) x0 + t x1, target x1 − x0, Euler sampling).
//
// Prints the filled-square fraction and a sliced-W2 distance for 1000, 100 and 10 Euler steps, and
// writes the training data, samples at t = 0, 0.25, 0.5, 0.75, 1, a few trajectories and the loss
// history as .npy files; examples/plots/02_checkerboard.py draws 02_data.png, 02_samples.png,
// 02_trajectories.png and 02_loss.png from them. Copy it to train your own network: swap the data
// source, the network or the schedule; the rest stays.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/nn/nn.hpp>
#include <fmd/train/train.hpp>

#include "common/cli.hpp"
#include "common/npy.hpp"

using S = float;

int main(int argc, char** argv) {
    cli::App app("Example 02: the seed notebook's checkerboard flow (MLP width 512, depth 5), trained and sampled");
    std::string out = ".", ckpt, resume;
    bool full = false;
    long steps = 20000, batch = 64, n_data = 10000, n_samples = 1000, ckpt_every = 0;
    double lr = 1e-4;
    unsigned long seed = 0;
    app.add_option("--out", out, "directory for the results (and the pictures drawn from them)");
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
    app.add_flag("--full", full, "train for the seed notebook's 100 000 steps (overrides --steps)");
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "AdamW learning rate")->check(CLI::PositiveNumber);
    app.add_option("--data", n_data, "size of the finite training set")->check(CLI::PositiveNumber);
    app.add_option("--samples", n_samples, "points sampled at the end")->check(CLI::Range(2L, 10'000'000L));
    app.add_option("--seed", seed, "random seed");
    app.add_option("--checkpoint", ckpt, "save a checkpoint here (every --checkpoint-every steps and at the end)");
    app.add_option("--checkpoint-every", ckpt_every, "steps between checkpoints (0: only at the end)")->check(CLI::NonNegativeNumber);
    app.add_option("--resume", resume, "continue from this checkpoint");
    cli::parse(app, argc, argv);
    if (full) steps = 100000;

    fmd::Rng rng(seed);
    const fmd::data::Checkerboard board;
    fmd::Matrix<S> points(2, n_data);
    board.sample(points, rng);
    const fmd::data::Dataset<S> data(points);

    // The seed model and optimizer.
    fmd::nn::MLP<S> net({.dim = 2, .width = 512, .depth = 5}, rng);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr});
    fmd::GaussianPath<fmd::schedule::Linear> path;
    fmd::train::Trainer trainer(path, fmd::loss::cfm, net, opt, {.batch_size = batch});
    std::printf("model: %ld parameters; training %ld steps at batch %ld\n", static_cast<long>(net.parameter_count()), steps, batch);

    if (!resume.empty()) {
        trainer.restore(fmd::train::load_checkpoint<S>(resume), rng);
        std::printf("resumed from %s at step %lld\n", resume.c_str(), static_cast<long long>(trainer.step()));
    }
    fmd::train::Progress progress(std::max(1L, steps / 20));
    fmd::train::LossHistory history;
    std::optional<fmd::train::CheckpointEvery> saver;
    if (!ckpt.empty()) saver.emplace(ckpt_every > 0 ? ckpt_every : steps, ckpt);
    fmd::train::fit(trainer, data, rng, steps, progress, history, saver);

    // Sampling: Euler on t_k = k/n (theory.md §7.1), snapshots at five times.
    fmd::Matrix<S> noise(2, n_samples), fresh(2, n_samples);
    fmd::fill_normal(noise, rng);
    board.sample(fresh, rng);
    const std::vector<double> snap_times{0.0, 0.25, 0.5, 0.75, 1.0};
    std::vector<fmd::Matrix<S>> snaps;
    fmd::TrajectoryRecorder<S> paths(40);
    auto observer = [&](double t, const fmd::Matrix<S>& x) {
        for (double s : snap_times)
            if (std::abs(t - s) < 1e-9) snaps.push_back(x);
        paths(t, x);
    };
    fmd::solver::Euler<S> euler;
    fmd::Matrix<S> x = noise;
    fmd::sample(net, x, fmd::grid::uniform(1000), euler, observer);
    std::printf("quality (filled-square fraction; sliced W2 to fresh data):\n");
    const std::vector<long> euler_steps{1000, 100, 10};
    std::vector<double> filled, sw2;
    for (long n : euler_steps) {
        fmd::Matrix<S> y = noise;
        if (n == 1000) y = x;
        else fmd::sample(net, y, fmd::grid::uniform(n), euler);
        filled.push_back(board.filled_fraction(y));
        sw2.push_back(fmd::metrics::sliced_wasserstein(y, fresh, 64, rng));
        std::printf("  Euler %4ld steps: filled %.3f   SW2 %.4f\n", n, filled.back(), sw2.back());
    }
    std::printf("  (fresh data: filled %.3f, N(0,I) noise: filled %.3f, SW2 %.4f)\n", board.filled_fraction(fresh),
                board.filled_fraction(noise), fmd::metrics::sliced_wasserstein(noise, fresh, 64, rng));

    // Results for the plotting script: points as 2 x n matrices, snapshots and trajectories as
    // (times, 2, points), the loss of every step.
    const std::string dir = out + "/02_checkerboard";
    npy::save(dir + "/data.npy", points.leftCols(std::min<long>(n_data, 5000)));
    npy::save(dir + "/fresh.npy", fresh);
    npy::save(dir + "/snapshots.npy", snaps);
    npy::save(dir + "/trajectories.npy", paths.states);
    npy::save(dir + "/loss.npy", history.losses);
    npy::Json info;
    info.add("snapshot_times", snap_times).add("euler_steps", euler_steps).add("filled", filled).add("sw2", sw2);
    info.add("last_step", static_cast<long>(trainer.step())).add("batch", batch).add("lr", lr).add("parameters", static_cast<long>(net.parameter_count()));
    info.save(dir + "/info.json");
    std::printf("wrote %s/\nplot: python3 examples/plots/02_checkerboard.py %s\n", dir.c_str(), out.c_str());
    return 0;
}

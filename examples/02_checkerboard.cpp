// Example 02: the course's checkerboard, trained end to end on the CPU (seed workload of
// cfm-from-first-principles: MLP 2→512 (+ sinusoidal time embedding)→5×(512, ReLU)→2,
// AdamW lr 1e-4, batch 64, x_t = (1 − t) x0 + t x1, target x1 − x0, Euler sampling).
//
// Writes 02_data.png, 02_samples.png (t = 0, 0.25, 0.5, 0.75, 1), 02_trajectories.png and
// 02_loss.png, and prints the filled-square fraction and a sliced-W2 distance for 1000, 100 and
// 10 Euler steps. Copy it to train your own network: swap the data source, the network or the
// schedule; the rest stays.
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
#include "common/plot.hpp"

using S = float;

int main(int argc, char** argv) {
    cli::App app("Example 02: the seed notebook's checkerboard flow (MLP width 512, depth 5), trained and sampled");
    std::string out = ".", ckpt, resume;
    bool full = false;
    long steps = 20000, batch = 64, n_data = 10000, n_samples = 1000, ckpt_every = 0;
    double lr = 1e-4;
    unsigned long seed = 0;
    app.add_option("--out", out, "directory for the pictures");
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
    for (long n : {1000L, 100L, 10L}) {
        fmd::Matrix<S> y = noise;
        if (n == 1000) y = x;
        else fmd::sample(net, y, fmd::grid::uniform(n), euler);
        std::printf("  Euler %4ld steps: filled %.3f   SW2 %.4f\n", n, board.filled_fraction(y), fmd::metrics::sliced_wasserstein(y, fresh, 64, rng));
    }
    std::printf("  (fresh data: filled %.3f, N(0,I) noise: filled %.3f, SW2 %.4f)\n", board.filled_fraction(fresh),
                board.filled_fraction(noise), fmd::metrics::sliced_wasserstein(noise, fresh, 64, rng));

    // Pictures.
    const double lim = 4.5;
    auto panel = [&] { plot::Canvas c(320, 320, -lim, lim, -lim, lim); c.frame(); return c; };
    {
        auto c = panel();
        c.scatter(points.leftCols(std::min<long>(n_data, 5000)), plot::black, 1.0, 0.4);
        plot::save_panels({c}, {"training data"}, 1, out + "/02_data.png");
    }
    std::vector<plot::Canvas> sp;
    std::vector<std::string> st;
    for (std::size_t k = 0; k < snaps.size(); ++k) {
        sp.push_back(panel());
        sp.back().scatter(snaps[k], plot::blue, 1.2, 0.5);
        char title[32];
        std::snprintf(title, sizeof title, "t = %.2f", snap_times[k]);
        st.push_back(title);
    }
    plot::save_panels(sp, st, static_cast<int>(sp.size()), out + "/02_samples.png");
    {
        auto c = panel();
        c.scatter(fresh, plot::Color{210, 210, 210}, 1.0, 0.6);
        for (std::size_t k = 0; k + 1 < paths.states.size(); k += 5) {
            const auto& a = paths.states[k];
            const auto& b = paths.states[std::min(k + 5, paths.states.size() - 1)];
            for (Eigen::Index j = 0; j < a.cols(); ++j) c.line(a(0, j), a(1, j), b(0, j), b(1, j), plot::orange, 0.8);
        }
        for (Eigen::Index j = 0; j < paths.states.back().cols(); ++j) c.dot(paths.states.back()(0, j), paths.states.back()(1, j), plot::black, 2.2, 1.0);
        plot::save_panels({c}, {"trajectories, Euler 1000 steps"}, 1, out + "/02_trajectories.png");
    }
    {
        // Loss curve: mean loss over windows of steps.
        const auto& L = history.losses;
        const std::size_t bins = std::min<std::size_t>(400, std::max<std::size_t>(1, L.size()));
        std::vector<double> m(bins, 0.0);
        for (std::size_t b = 0; b < bins; ++b) {
            const std::size_t lo = b * L.size() / bins, hi = std::max(lo + 1, (b + 1) * L.size() / bins);
            for (std::size_t i = lo; i < hi && i < L.size(); ++i) m[b] += L[i] / static_cast<double>(hi - lo);
        }
        const double top = m.empty() ? 1.0 : *std::max_element(m.begin(), m.end()) * 1.05;
        plot::Canvas c(640, 320, 0, static_cast<double>(bins), 0, top);
        c.frame();
        for (std::size_t b = 0; b + 1 < bins; ++b) c.line(static_cast<double>(b), m[b], static_cast<double>(b + 1), m[b + 1], plot::red);
        char title[96];
        std::snprintf(title, sizeof title, "CFM loss, %zu steps (y from 0 to %.2f)", L.size(), top);
        plot::save_panels({c}, {title}, 1, out + "/02_loss.png");
    }
    std::printf("wrote %s/02_{data,samples,trajectories,loss}.png\n", out.c_str());
    return 0;
}

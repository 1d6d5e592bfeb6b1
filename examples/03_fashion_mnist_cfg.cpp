// Example 03: class-conditional flow matching with classifier-free guidance on Fashion-MNIST
// (the course's image chapter), on the CPU.
//
//   data      Fashion-MNIST from Debian's dataset-fashion-mnist package, read from
//             /usr/share/datasets/fashion-mnist (or --data DIR) with fmd::data::load_idx; the
//             784 pixels of an image are one column, scaled to [−1, 1]. If the files are missing
//             at the default place the example runs `apt-get install dataset-fashion-mnist`
//             (--no-install: just say so and stop).
//   model     fmd::nn::MLP 784 → width → depth × (width, SiLU) → 784 with sinusoidal time
//             embedding and a 10-class embedding (+ the null label ∅), labels dropped to ∅ with
//             p = 0.1 (theory.md §6.9), linear path, AdamW with warm-up + cosine learning rate,
//             EMA of the weights for sampling. --predict x1 (default) trains the network to predict
//             the clean image (x1 loss, theory.md §6.5) and samples with the velocity
//             u = (x̂1 − x)/(1 − t) (§5.4); --predict velocity trains the plain CFM velocity (§6.2).
//             Both are the same flow; an MLP without skip connections must learn the identity
//             to cancel the noise in a velocity, and the leftover shows as speckle in the images,
//             while x̂1 needs no identity (measured at the defaults: velocity 76 / 94 / 98.6 / 99.2 %
//             accuracy at w = 1 / 2 / 3 / 5 with speckled pictures, x1 88 / 98 / 99.8 / 98 % and clean ones).
//   sampling  fmd::Guided (theory.md §7.8; w = 1 unguided, w > 1 guided, both branches in one
//             batched network call) for w ∈ {1, 2, 3, 5}: x̂1 predictions are guided, then
//             converted to a velocity (mixing commutes with conversion, §5.6) and integrated by
//             the midpoint rule (never evaluates t = 1, where the conversion is singular, §5.3);
//             velocity models by Heun.
//   scoring   a small MLP classifier (examples/common/fashion_mnist.hpp, written with the library's Linear layers and AdamW,
//             softmax cross-entropy) trained on the real training images; its accuracy on the
//             real test set is the ceiling, and per w it reports how often it recognizes the
//             intended class in the generated images.
//   output    a table of accuracies, and the generated images per w (the same noise for every w)
//             as .npy files: examples/plots/03_fashion_mnist_cfg.py draws 03_fashion_mnist_cfg.png,
//             10 classes (rows) × 8 samples for each w.
//
// Threads: Eigen's matrix products run on --threads OpenMP threads (default 2). The default run
// (12 000 steps at batch 256) took 9 min 47 s on 2 cores of an AMD EPYC (release build), with
// generated-image accuracy 88 / 98 / 99.8 / 98 % at w = 1 / 2 / 3 / 5 against a classifier
// ceiling of 87 % on real test images (docs/03_fashion_mnist_cfg.png); --steps / --width raise
// quality for longer runs.
// Checkpoints go through the library format: --checkpoint FILE saves (every --checkpoint-every
// steps and at the end), --resume FILE continues training, --sample-only with --resume FILE (or
// --checkpoint FILE) only samples and scores.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "common/cli.hpp"
#include "common/fashion_mnist.hpp"
#include "common/npy.hpp"

using S = float;
using fmd::Matrix;
using fmd::Vector;

namespace {

using fashion::classes;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    cli::App app("Example 03: class-conditional flow matching with classifier-free guidance on Fashion-MNIST.\n"
                 "Defaults: about 10 minutes on 2 cores. Longer runs: raise --steps (and --width).");
    const std::string default_dir = "/usr/share/datasets/fashion-mnist";
    std::string dir = default_dir, out = ".", ckpt, resume, predict = "x1";
    bool no_install = false, sample_only = false;
    int threads = 2, per_class = 50;
    long steps = 12000, batch = 256, width = 1024, depth = 3, sample_steps = 20, classifier_epochs = 4, ckpt_every = 0;
    double lr = 1e-3, ema = 0.999, dropout = 0.1;
    unsigned long seed = 0;
    app.add_option("--data", dir, "directory with the four IDX files (installed there when missing)");
    app.add_flag("--no-install", no_install, "do not install dataset-fashion-mnist when the files are missing");
    app.add_option("--out", out, "directory for the results (and the picture drawn from them)");
    app.add_option("--threads", threads, "Eigen threads")->check(CLI::PositiveNumber);
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--width", width, "MLP width")->check(CLI::PositiveNumber);
    app.add_option("--depth", depth, "hidden blocks")->check(CLI::NonNegativeNumber);
    app.add_option("--lr", lr, "AdamW learning rate")->check(CLI::PositiveNumber);
    app.add_option("--ema", ema, "EMA decay")->check(CLI::Range(0.0, 0.999999));
    app.add_option("--dropout", dropout, "label dropout probability")->check(CLI::Range(0.0, 1.0));
    app.add_option("--predict", predict, "what the network predicts")->check(CLI::IsMember({"x1", "velocity"}));
    app.add_option("--sample-steps", sample_steps, "sampler steps")->check(CLI::PositiveNumber);
    app.add_option("--eval-per-class", per_class, "generated images per class for the scores")->check(CLI::Range(8, 100000));
    app.add_option("--classifier-epochs", classifier_epochs, "epochs of the scoring classifier")->check(CLI::PositiveNumber);
    app.add_option("--seed", seed, "random seed");
    app.add_option("--checkpoint", ckpt, "save checkpoints here");
    app.add_option("--checkpoint-every", ckpt_every, "steps between checkpoints (0: only at the end)")->check(CLI::NonNegativeNumber);
    app.add_option("--resume", resume, "continue from this checkpoint");
    app.add_flag("--sample-only", sample_only, "only sample and score (with --resume or --checkpoint)");
    cli::parse(app, argc, argv);
    const bool install = !no_install, x1_model = predict == "x1";
    if (sample_only && resume.empty() && ckpt.empty()) cli::fail("--sample-only needs --resume FILE or --checkpoint FILE to load the model from");
    Eigen::setNbThreads(threads);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // results line by line, between the progress lines on stderr
    const auto t_start = std::chrono::steady_clock::now();

    // Data.
    auto [train_set, test_set] = fashion::load(dir, dir == default_dir, install);
    std::printf("Fashion-MNIST from %s\n", dir.c_str());
    const Eigen::Index dim = train_set.images.rows(), side = train_set.rows;
    std::printf("  %ld training and %ld test images of %ldx%ld pixels, scaled to [-1, 1]; %d threads\n", static_cast<long>(train_set.images.cols()),
                static_cast<long>(test_set.images.cols()), static_cast<long>(train_set.rows), static_cast<long>(train_set.cols), Eigen::nbThreads());
    fmd::Rng rng(seed);

    // The scoring classifier (trained on real images; its test accuracy is the ceiling).
    auto t0 = std::chrono::steady_clock::now();
    fashion::Classifier clf(dim, rng);
    fashion::train_classifier(clf, train_set.images, train_set.labels, classifier_epochs, rng);
    const double ceiling = fashion::accuracy(clf.predict(test_set.images), test_set.labels);
    std::printf("classifier (784-512-256-10 MLP, %ld epochs, %.0f s): accuracy on the real test images %.2f%% (the ceiling)\n", classifier_epochs,
                seconds_since(t0), 100 * ceiling);

    // The conditional flow model.
    const fmd::nn::MLPConfig config{.dim = dim, .width = width, .depth = depth, .activation = fmd::nn::Activation::silu,
                                    .time = {.channels = 128, .scale = 1000.0}, .num_classes = classes};
    fmd::nn::MLP<S> net(config, rng);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr, .weight_decay = 0.0});
    const fmd::nn::WarmupCosine schedule{.peak_lr = lr, .warmup_steps = std::min(500L, steps / 10), .total_steps = steps, .min_lr = lr / 50};
    fmd::GaussianPath<fmd::schedule::Linear> path;
    const fmd::data::LabelledDataset<S> data(std::move(train_set.images), train_set.labels);  // no second copy of 188 MB
    std::printf("model: %s, %ld parameters, predicts %s\n", net.describe().c_str(), static_cast<long>(net.parameter_count()),
                x1_model ? "x1 (the clean image)" : "the velocity");

    double train_seconds = 0;
    auto train_with = [&](auto loss) {  // the loss type fixes the Trainer type
        fmd::train::Trainer trainer(path, loss, net, opt,
                                    {.batch_size = batch, .ema_decay = ema, .lr_schedule = [schedule](std::int64_t s) { return schedule.lr(s); },
                                     .label_dropout = dropout});
        const std::string load_from = !resume.empty() ? resume : (sample_only ? ckpt : "");
        if (!load_from.empty()) {
            trainer.restore(fmd::train::load_checkpoint<S>(load_from), rng);
            std::printf("loaded %s (step %lld; it must have been trained with the same --predict)\n", load_from.c_str(),
                        static_cast<long long>(trainer.step()));
        }
        if (!sample_only) {
            std::printf("training to step %ld at batch %ld (label dropout %.2f, EMA %.4f)\n", steps, batch, dropout, ema);
            const auto start = std::chrono::steady_clock::now();
            fmd::train::Progress progress(std::max(1L, steps / 40));
            std::optional<fmd::train::CheckpointEvery> saver;
            if (!ckpt.empty()) saver.emplace(ckpt_every > 0 ? ckpt_every : steps, ckpt);
            fmd::train::fit(trainer, data, rng, steps, progress, saver);
            train_seconds = seconds_since(start);
            if (!ckpt.empty()) {
                fmd::train::save_checkpoint(ckpt, trainer.checkpoint(rng));
                std::printf("saved checkpoint %s\n", ckpt.c_str());
            }
            std::printf("trained in %.0f s (final loss EMA %.4f)\n", train_seconds, progress.loss_ema());
        }
        if (trainer.ema().size() == net.parameter_count()) net.parameters() = trainer.ema();  // sample with the EMA weights
    };
    if (x1_model)
        train_with(fmd::loss::x1);
    else
        train_with(fmd::loss::cfm);

    // Guided sampling: per w the same noise; columns y·per_class … (y + 1)·per_class − 1 have label y.
    const Eigen::Index n = classes * per_class;
    Matrix<S> noise(dim, n);
    fmd::Rng noise_rng(seed + 1);
    fmd::fill_normal(noise, noise_rng);
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (Eigen::Index j = 0; j < n; ++j) labels[static_cast<std::size_t>(j)] = static_cast<int>(j / per_class);
    fmd::Guided<S, fmd::nn::MLP<S>> guided(net, net.null_label(), 1.0, labels);
    fmd::solver::Heun<S> heun;
    fmd::solver::Midpoint<S> midpoint;  // never evaluates at t = 1, where x1 → velocity is singular (theory.md §5.3)
    // Guidance mixes x1 predictions like velocities (theory.md §5.6): guide, then convert.
    auto velocity_of_x1 = fmd::reparameterize(path, guided, fmd::Prediction::x1, fmd::Prediction::velocity);
    const auto grid = fmd::grid::uniform(sample_steps);
    const double weights[] = {1.0, 2.0, 3.0, 5.0};
    std::vector<Matrix<S>> samples;
    std::vector<double> acc;
    for (const double w : weights) {
        t0 = std::chrono::steady_clock::now();
        guided.set_weight(w);
        Matrix<S> x = noise;
        if (x1_model)
            fmd::sample(velocity_of_x1, x, grid, midpoint);
        else
            fmd::sample(guided, x, grid, heun);
        acc.push_back(fashion::accuracy(clf.predict(x), labels));
        std::printf("w = %.0f: classifier recognizes the intended class in %.1f%% of %ld samples (%s %ld steps, %.0f s)\n", w, 100 * acc.back(),
                    static_cast<long>(n), x1_model ? "midpoint" : "Heun", sample_steps, seconds_since(t0));
        samples.push_back(std::move(x));
    }
    // Results for the plotting script: images as (weights, pixels, n), column j of class j / per_class.
    const std::string results = out + "/03_fashion_mnist_cfg";
    npy::save(results + "/samples.npy", samples);
    npy::Json info;
    info.add("weights", std::vector<double>(std::begin(weights), std::end(weights))).add("accuracy", acc).add("ceiling", ceiling);
    info.add("side", static_cast<long>(side)).add("per_class", per_class).add("classes", fashion::class_name_list());
    info.add("steps", steps).add("sample_steps", sample_steps).add("sampler", x1_model ? "midpoint" : "Heun");
    info.save(results + "/info.json");

    std::printf("\n| w | accuracy on generated images |\n|---|---|\n");
    for (std::size_t k = 0; k < acc.size(); ++k) std::printf("| %.0f | %.1f %% |\n", weights[k], 100 * acc[k]);
    std::printf("| real test images (ceiling) | %.1f %% |\n", 100 * ceiling);
    std::printf("\nwrote %s/; total time %.0f s (training %.0f s)\nplot: python3 examples/plots/03_fashion_mnist_cfg.py %s\n", results.c_str(),
                seconds_since(t_start), train_seconds, out.c_str());
    return 0;
}

// Example 06: one-step and few-step generation (theory.md §9.3–§9.5), on the checkerboard and on
// Fashion-MNIST.
//
// Checkerboard: trains five models of the same size and compares them at 1, 2, 4 and 8 network
// evaluations:
//   CFM          the reference: plain flow matching, sampled by Euler (and at 100 NFE, the baseline)
//   MeanFlow     a two-time network ū(x, t, r) trained on the MeanFlow identity (one extra tangent
//                pass per step), sampled by jumps x ← x + (r − t)·ū(x, t, r)
//   shortcut     the same two-time network trained on step-size self-consistency
//   CT           consistency training without a teacher (improved recipe), multistep sampling
//   CD           consistency distillation from the CFM model, Heun as the teacher's solver
// Prints the filled-square fraction and sliced W2 to fresh data per family and NFE, with training
// times, and writes the samples as .npy files (06_few_step.png: rows: families, columns: NFE).
//
// Fashion-MNIST (class-conditional, guided): a MeanFlow model whose network predicts the endpoint
// (flowmap::EndpointFlowMap: ū = (D − x)/(1 − t), clean images from an MLP), with classifier-free
// guidance folded into the training target (ω), and a shortcut model of the same form sampled
// through fmd::Guided (weight ω), against an x1-prediction CFM model of the same size trained for
// the same steps and sampled with guidance weight ω. Scores: the accuracy of a
// classifier trained on the real images (examples/common/fashion_mnist.hpp) at recognizing the
// intended class, and the sliced W2 between generated and real test images in that classifier's
// 256-d feature space. Writes the images shown in 06_fashion.png as .npy files.
// examples/plots/06_few_step.py draws both pictures from what the parts that ran wrote.
//
// Every sampler here takes its NFE from an fmd time grid; copy a family's lines to train your own
// few-step model. Threads: --threads for Eigen's products (default 2).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "common/cli.hpp"
#include "common/fashion_mnist.hpp"
#include "common/npy.hpp"

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

void checkerboard_part(const std::string& out, long steps, long batch, long width, long depth, long n, double lr, double fraction, double power,
                       fmd::Rng& rng);

struct FashionOptions {
    std::string dir, out;
    bool is_default_dir, install;
    long steps, batch, width, per_class;
    double lr, omega;
};

/// The Fashion-MNIST part: MeanFlow (endpoint-parameterized, guidance in the target) against CFM (x1).
void fashion_part(const FashionOptions& o, fmd::Rng& rng) {
    using fmd::Matrix;
    auto data = fashion::load(o.dir, o.is_default_dir, o.install);
    const Eigen::Index dim = data.train.images.rows(), side = data.train.rows;
    auto start = std::chrono::steady_clock::now();
    fashion::Classifier clf(dim, rng);
    fashion::train_classifier(clf, data.train.images, data.train.labels, 3, rng);
    std::printf("\nFashion-MNIST: classifier (3 epochs, %.0f s) accuracy on the real test images %.1f %%\n", seconds_since(start),
                100 * fashion::accuracy(clf.predict(data.test.images), data.test.labels));
    // Real test images, per_class of each class, for the feature distance.
    const Eigen::Index n = fashion::classes * o.per_class;
    Matrix<S> real(dim, n);
    std::vector<int> labels(static_cast<std::size_t>(n));
    {
        std::vector<Eigen::Index> taken(fashion::classes, 0);
        for (std::size_t k = 0; k < data.test.labels.size(); ++k) {
            const int y = data.test.labels[k];
            if (taken[static_cast<std::size_t>(y)] < o.per_class) real.col(y * o.per_class + taken[static_cast<std::size_t>(y)]++) = data.test.images.col(static_cast<Eigen::Index>(k));
        }
        for (Eigen::Index j = 0; j < n; ++j) labels[static_cast<std::size_t>(j)] = static_cast<int>(j / o.per_class);
    }
    const Matrix<S> real_features = clf.features(real);
    auto score = [&](const Matrix<S>& x, double& acc, double& sw) {
        acc = fashion::accuracy(clf.predict(x), labels);
        fmd::Rng proj(7);
        sw = fmd::metrics::sliced_wasserstein(clf.features(x), real_features, 128, proj);
    };

    const fmd::data::LabelledDataset<S> train_data(std::move(data.train.images), data.train.labels);
    const fmd::nn::MLPConfig one{.dim = dim, .width = o.width, .depth = 3, .activation = fmd::nn::Activation::silu,
                                 .time = {.channels = 128, .scale = 100.0}, .num_classes = fashion::classes};
    fmd::nn::MLPConfig two = one;
    two.two_times = true;
    Net cfm(one, rng), inner(two, rng), sc_inner(two, rng);
    fmd::flowmap::EndpointFlowMap meanflow(inner), shortcut(sc_inner);
    auto fit = [&](const char* name, auto& net, auto objective) {
        fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = o.lr, .weight_decay = 0.0});
        fmd::train::Trainer trainer(Path{}, std::move(objective), net, opt, {.batch_size = o.batch, .ema_decay = 0.999, .label_dropout = 0.1});
        trainer.set_lr_schedule(fmd::nn::WarmupCosine{.peak_lr = o.lr, .warmup_steps = std::min(500L, o.steps / 10), .total_steps = o.steps, .min_lr = o.lr / 50});
        std::printf("training %s: %ld steps at batch %ld\n", name, o.steps, o.batch);
        fmd::train::Progress progress(std::max(1L, o.steps / 20));
        const auto t0 = std::chrono::steady_clock::now();
        fmd::train::fit(trainer, train_data, rng, o.steps, progress);
        net.parameters() = trainer.ema();  // sample with the weight average
        return seconds_since(t0);
    };
    const double cfm_secs = fit("CFM (x1 prediction)", cfm, fmd::loss::x1);
    // t from a logit-normal below 0.995: the endpoint parameterization divides by 1 − t.
    const double mf_secs = fit("MeanFlow (endpoint network, guidance in the target)", meanflow,
                               fmd::flowmap::MeanFlow<S, fmd::time_sampler::LogitNormal>({.fraction_unequal = 0.25, .p = 1.0, .omega = o.omega},
                                                                                         fmd::time_sampler::LogitNormal(0.4, 1.0, 0.0, 0.995)));
    const double sc_secs = fit("shortcut (endpoint network)", shortcut, fmd::flowmap::Shortcut<S>({.max_steps = 128, .t_max = 0.995}));

    // Samples from the same noise; columns y·per_class … have label y.
    Matrix<S> noise(dim, n), work;
    fmd::Rng noise_rng(1);
    fmd::fill_normal(noise, noise_rng);
    fmd::WithLabels<S, decltype(meanflow)> conditional(meanflow, labels);
    fmd::Guided<S, Net> guided(cfm, cfm.null_label(), o.omega, labels);
    auto cfm_velocity = fmd::reparameterize(Path{}, guided, fmd::Prediction::x1, fmd::Prediction::velocity);
    fmd::solver::Euler<S> euler;
    fmd::solver::Midpoint<S> midpoint;  // never evaluates t = 1, where x1 → velocity is singular
    std::printf("\n| Fashion-MNIST, guidance %.1f | train s | 1 NFE | 2 NFE | 4 NFE | 8 NFE | 100 NFE |\n|---|---|---|---|---|---|---|\n", o.omega);
    // Shown in the picture: MeanFlow at 1, 2, 4 NFE and CFM at 100 NFE.
    std::vector<Matrix<S>> shown;
    std::vector<std::string> titles;
    std::vector<double> shown_acc, shown_sw;
    Matrix<S> x;
    double acc = 0, sw = 0;
    std::printf("| MeanFlow (accuracy / feature SW2) | %.0f |", mf_secs);
    for (long k : {1L, 2L, 4L, 8L}) {
        x = noise;
        fmd::sample_flow_map(conditional, x, fmd::grid::uniform(k), work);
        score(x, acc, sw);
        std::printf(" %.1f %% / %.2f |", 100 * acc, sw);
        if (k <= 4) {
            shown.push_back(x);
            titles.push_back("MeanFlow, " + std::to_string(k) + " NFE");
            shown_acc.push_back(acc);
            shown_sw.push_back(sw);
        }
    }
    std::printf(" |\n| shortcut, guided (accuracy / feature SW2) | %.0f |", sc_secs);
    fmd::Guided<S, decltype(shortcut)> guided_shortcut(shortcut, sc_inner.null_label(), o.omega, labels);
    for (long k : {1L, 2L, 4L, 8L}) {
        x = noise;
        fmd::sample_flow_map(guided_shortcut, x, fmd::grid::uniform(k), work);
        score(x, acc, sw);
        std::printf(" %.1f %% / %.2f |", 100 * acc, sw);
    }
    std::printf(" |\n| CFM, x1 (Euler; 100: midpoint) | %.0f |", cfm_secs);
    for (long k : {1L, 2L, 4L, 8L}) {
        x = noise;
        fmd::sample(cfm_velocity, x, fmd::grid::uniform(k), euler);
        score(x, acc, sw);
        std::printf(" %.1f %% / %.2f |", 100 * acc, sw);
    }
    x = noise;
    fmd::sample(cfm_velocity, x, fmd::grid::uniform(50), midpoint);
    score(x, acc, sw);
    std::printf(" %.1f %% / %.2f |\n", 100 * acc, sw);
    shown.push_back(x);
    titles.push_back("CFM, 100 NFE");
    shown_acc.push_back(acc);
    shown_sw.push_back(sw);
    fmd::Rng proj(7);
    std::printf("real test images against themselves (another %ld): feature SW2 0 by construction; N(0, I) noise: %.2f\n", static_cast<long>(n),
                fmd::metrics::sliced_wasserstein(clf.features(noise), real_features, 128, proj));
    // Results for the plotting script: images as (panels, pixels, n), column j of class j / per_class.
    const std::string dir = o.out + "/06_few_step";
    npy::save(dir + "/fashion.npy", shown);
    npy::Json info;
    info.add("titles", titles).add("accuracy", shown_acc).add("feature_sw2", shown_sw).add("omega", o.omega).add("steps", o.steps);
    info.add("side", static_cast<long>(side)).add("per_class", o.per_class).add("classes", fashion::class_name_list());
    info.save(dir + "/fashion.json");
    std::printf("wrote %s/fashion.*\n", dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    cli::App app("Example 06: one-step and few-step models (MeanFlow, shortcut, consistency) on the checkerboard and Fashion-MNIST");
    std::string out = ".", part = "both";
    long steps = 8000, batch = 256, width = 256, depth = 3, n = 2000;
    double lr = 1e-3, fraction = 0.75, power = 0.75;
    unsigned long seed = 0;
    int threads = 2;
    const std::string default_dir = "/usr/share/datasets/fashion-mnist";
    FashionOptions fo{.dir = default_dir, .out = ".", .is_default_dir = true, .install = true, .steps = 4000, .batch = 256, .width = 512,
                      .per_class = 50, .lr = 1e-3, .omega = 3.0};
    bool no_install = false;
    app.add_option("--part", part, "which part to run")->check(CLI::IsMember({"both", "checkerboard", "fashion"}));
    app.add_option("--out", out, "directory for the results (and the pictures drawn from them)");
    app.add_option("--threads", threads, "Eigen threads")->check(CLI::PositiveNumber);
    app.add_option("--seed", seed, "random seed");
    app.add_option("--steps", steps, "checkerboard: training steps per family")->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "batch size (both parts)")->check(CLI::PositiveNumber);
    app.add_option("--width", width, "checkerboard: MLP width")->check(CLI::PositiveNumber);
    app.add_option("--depth", depth, "checkerboard: hidden blocks")->check(CLI::NonNegativeNumber);
    app.add_option("--lr", lr, "AdamW peak learning rate (both parts)")->check(CLI::PositiveNumber);
    app.add_option("--meanflow-fraction", fraction, "checkerboard: MeanFlow's fraction of samples with r != t")->check(CLI::Range(0.0, 1.0));
    app.add_option("--meanflow-p", power, "checkerboard: MeanFlow's adaptive-weight power")->check(CLI::NonNegativeNumber);
    app.add_option("--samples", n, "checkerboard: points per evaluation")->check(CLI::Range(2L, 10'000'000L));
    app.add_option("--data", fo.dir, "Fashion-MNIST: directory with the four IDX files");
    app.add_flag("--no-install", no_install, "Fashion-MNIST: do not install dataset-fashion-mnist when missing");
    app.add_option("--fashion-steps", fo.steps, "Fashion-MNIST: training steps per model")->check(CLI::PositiveNumber);
    app.add_option("--fashion-width", fo.width, "Fashion-MNIST: MLP width")->check(CLI::PositiveNumber);
    app.add_option("--omega", fo.omega, "Fashion-MNIST: guidance weight (in MeanFlow's target, and CFM's sampler)");
    app.add_option("--per-class", fo.per_class, "Fashion-MNIST: generated images per class")->check(CLI::Range(8L, 100000L));
    cli::parse(app, argc, argv);
    fo.out = out;
    fo.batch = batch;
    fo.lr = lr;
    fo.install = !no_install;
    fo.is_default_dir = fo.dir == default_dir;
    Eigen::setNbThreads(threads);
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // results line by line, between the progress lines on stderr

    fmd::Rng rng(seed);
    const auto total_start = std::chrono::steady_clock::now();
    if (part != "fashion") checkerboard_part(out, steps, batch, width, depth, n, lr, fraction, power, rng);
    if (part != "checkerboard") fashion_part(fo, rng);
    std::printf("done in %.0f s\nplot: python3 examples/plots/06_few_step.py %s\n", seconds_since(total_start), out.c_str());
    return 0;
}

namespace {

void checkerboard_part(const std::string& out, long steps, long batch, long width, long depth, long n, double lr, double fraction, double power,
                       fmd::Rng& rng) {
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
    // Results for the plotting script: samples as (families x NFEs, 2, n), scores as families x NFEs.
    std::vector<fmd::Matrix<S>> samples;
    Eigen::MatrixXd filled(5, nfes.size()), sw2(5, nfes.size());
    fmd::Matrix<S> x;
    for (int f = 0; f < 5; ++f) {
        std::printf("| %-12s | %7.0f |", names[f], secs[static_cast<std::size_t>(f)]);
        for (std::size_t k = 0; k < nfes.size(); ++k) {
            generate(f, nfes[k], x);
            filled(f, k) = board.filled_fraction(x);
            sw2(f, k) = sw(x);
            std::printf(" %.3f / %.3f  |", filled(f, k), sw2(f, k));
            samples.push_back(x);
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
    const std::string dir = out + "/06_few_step";
    npy::save(dir + "/checkerboard.npy", samples);
    npy::save(dir + "/filled.npy", filled);
    npy::save(dir + "/sw2.npy", sw2);
    npy::Json info;
    info.add("families", std::vector<std::string>(std::begin(names), std::end(names))).add("nfes", nfes).add("train_seconds", secs).add("steps", steps);
    info.save(dir + "/checkerboard.json");
    std::printf("wrote %s/checkerboard.* (%.0f s)\n", dir.c_str(), seconds_since(total_start));
}

}  // namespace

// Example 04: a diffusion model the score-SDE way. A small MLP learns the noise ε̂ (DDPM's
// ε-prediction, theory.md §6.4) or the score s = ∇log p_t (CSM, theory.md §6.3) of two moons
// (or 8 Gaussians, --data gaussians); the SAME network then samples
//   - with the probability-flow ODE, its output converted to a velocity (theory.md §5.2), and
//   - with the SDE of theory.md §3.7, drift u + σ²/2·s, by Euler–Maruyama for several σ (§7.6).
// Prints for each sampler the sliced-W2 distance to fresh data beside the floor that exact samples
// reach, and writes the samples as .npy files; examples/plots/04_score_sde.py draws 04_score_sde.png
// (data | ODE | SDE σ1 … σk, side by side).
//
// Copy it to start your own: swap the data source (anything with sample(out, rng)), the network,
// the loss (--loss) or σ (--sigmas); the conversions and samplers stay as they are.
//
// Choices, and why:
//   - Linear (CondOT) path x_t = t z + (1 − t) ε (theory.md §4.1), as in examples 01–02, so a
//     score model and a flow model are trained on the same path and differ only in the target.
//     Its two singular ends are handled explicitly below: ε̂ or s → u divides by α_t = t (t = 0,
//     theory.md §5.3), and the CSM target −ε/β_t blows up at t = 1 (theory.md §4.3).
//   - ε-prediction is the default: its target ε has unit variance at every t, while the CSM
//     target −ε/(1 − t) has variance 1/(1 − t)², so CSM must stop training at t_max < 1 and its
//     loss is dominated by the last few percent of t (CSM = ε-loss weighted by 1/β², §6.4).
//   - Sampling runs on a cosine grid from t0 to t_max (denser at both ends, where the converted
//     fields change fastest, §4.2) and ends with one denoising step x̂1(X, t_max) (theory.md §7.5):
//     the model is never evaluated outside the times it was trained on.
//   - t0 = 0.01, not 0.001: u = (x − ε̂)/t turns an absolute error e of the network into a velocity
//     error e/t, so the first steps amplify it (measured: t0 = 1e-3 and 1e-4 sample worse).
//   - σ is constant, as in the course labs and example 01 (theory.md §7.7). Large σ amplifies the
//     network's error near t = 1, where (σ²/2)·s = −(σ²/2)·ε̂/β: σ = 2 already sharpens the moons.
//     Any callable double(double t) works in its place, e.g. σ_t = c·β_t, which stays bounded there:
//       auto em = fmd::solver::euler_maruyama<S>([&](double t) { return c * path.coefficients(t).beta; });
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/nn/nn.hpp>
#include <fmd/train/train.hpp>

#include "common/cli.hpp"
#include "common/npy.hpp"

using S = float;
using Matrix = fmd::Matrix<S>;

namespace {

/// The training distribution: 8 Gaussians on a circle or two moons. Any type with
/// sample(out, rng) filling a dim x n batch is a data source for the Trainer (an endless stream:
/// every batch is fresh; wrap a finite set in fmd::data::Dataset instead).
struct Toy {
    bool moons = false;
    fmd::GaussianMixture<S> ring = fmd::GaussianMixture<S>::ring(8, 4.0f, 0.25f);
    fmd::data::TwoMoons two_moons{.noise = 0.05, .scale = 2.0};
    template <class O, class G>
    void sample(O&& out, G& rng) const {
        if (moons) two_moons.sample(out, rng);
        else ring.sample(out, rng);
    }
};

}  // namespace

int main(int argc, char** argv) {
    cli::App app("Example 04: a score network (epsilon or CSM loss) sampled by the probability-flow ODE and by SDEs");
    std::string out = ".", data_name = "moons", loss_name = "epsilon", ckpt;
    long steps = 6000, batch = 256, width = 192, depth = 3, sample_steps = 100, n = 2000, threads = 1;
    double lr = 2e-3, ema = 0.999, t_max = 0.0, t0 = 1e-2;
    std::vector<double> sigmas = {0.25, 0.5, 1, 2};
    unsigned long seed = 0;
    bool sample_only = false;
    app.add_option("--out", out, "directory for the results (and the picture drawn from them)");
    app.add_option("--data", data_name, "data set")->check(CLI::IsMember({"moons", "gaussians"}));
    app.add_option("--loss", loss_name, "training loss")->check(CLI::IsMember({"epsilon", "csm"}));
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "AdamW learning rate")->check(CLI::PositiveNumber);
    app.add_option("--width", width, "MLP width")->check(CLI::PositiveNumber);
    app.add_option("--depth", depth, "hidden blocks")->check(CLI::NonNegativeNumber);
    app.add_option("--ema", ema, "EMA decay")->check(CLI::Range(0.0, 0.999999));
    app.add_option("--t-max", t_max, "largest training time (0: 0.999, or 0.95 for --loss csm)")->check(CLI::Range(0.0, 1.0));
    app.add_option("--sample-steps", sample_steps, "sampler steps")->check(CLI::PositiveNumber);
    app.add_option("--t0", t0, "first sampling time")->check(CLI::Range(0.0, 1.0));
    app.add_option("--sigmas", sigmas, "SDE noise levels sigma")->delimiter(',');
    app.add_option("--samples", n, "samples per sampler")->check(CLI::Range(2L, 10'000'000L));
    app.add_option("--seed", seed, "random seed");
    app.add_option("--threads", threads, "Eigen threads")->check(CLI::PositiveNumber);
    app.add_option("--checkpoint", ckpt, "save the model here (or load it with --sample-only)");
    app.add_flag("--sample-only", sample_only, "load --checkpoint and only sample");
    cli::parse(app, argc, argv);
    if (t_max == 0.0) t_max = loss_name == "csm" ? 0.95 : 0.999;
    if (sample_only && ckpt.empty()) cli::fail("--sample-only needs --checkpoint FILE");

    // Eigen threads its matrix products with OpenMP. These are small (256 x 256 times 256 columns):
    // on 2 shared cores a second thread made training 6-17x slower here (Eigen's GEMM threads
    // spin-wait on each other), so one thread is the default.
    Eigen::setNbThreads(static_cast<int>(threads));
    fmd::Rng rng(seed);
    const Toy data{.moons = data_name == "moons"};
    fmd::GaussianPath<fmd::schedule::Linear> path;

    // A small MLP with SiLU and random Fourier features of t (smooth in t, unlike ReLU).
    fmd::nn::MLP<S> net({.dim = 2, .width = width, .depth = depth, .activation = fmd::nn::Activation::silu,
                         .time = {.kind = fmd::nn::Embedding::fourier, .channels = 64, .sigma = 4.0}},
                        rng);
    fmd::nn::AdamW<S> opt(net.parameter_count(), {.lr = lr, .weight_decay = 0.0});
    const fmd::nn::WarmupCosine schedule{.peak_lr = lr, .warmup_steps = std::min(200L, steps / 10), .total_steps = steps, .min_lr = lr / 20};
    std::printf("model: %s, %ld parameters, %s loss on %s, t ~ U[0, %g]\n", net.describe().c_str(), static_cast<long>(net.parameter_count()),
                loss_name.c_str(), data_name.c_str(), t_max);

    // Training (theory.md §6): t ~ U[0, t_max], x_t = t z + (1 − t) ε, target ε or −ε/(1 − t).
    // The loss type fixes the Trainer type, hence the generic lambda.
    auto train_with = [&](auto loss) {
        fmd::train::Trainer trainer(path, loss, net, opt,
                                    {.batch_size = batch, .ema_decay = ema, .lr_schedule = [schedule](std::int64_t s) { return schedule.lr(s); }},
                                    fmd::time_sampler::Uniform(0.0, t_max));
        if (sample_only) {
            trainer.restore(fmd::train::load_checkpoint<S>(ckpt), rng);
            std::printf("loaded %s (step %lld; trained with the same --loss and architecture)\n", ckpt.c_str(), static_cast<long long>(trainer.step()));
        } else {
            const auto start = std::chrono::steady_clock::now();
            fmd::train::Progress progress(std::max(1L, steps / 10));
            fmd::train::fit(trainer, data, rng, steps, progress);
            std::printf("trained %ld steps at batch %ld in %.1f s (final loss EMA %.4f)\n", steps, batch,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), progress.loss_ema());
            if (!ckpt.empty()) fmd::train::save_checkpoint(ckpt, trainer.checkpoint(rng));
        }
        if (trainer.ema().size() == net.parameter_count()) net.parameters() = trainer.ema();  // sample with the EMA weights
    };
    if (loss_name == "csm") train_with(fmd::loss::csm);
    else train_with(fmd::loss::epsilon);

    // One network, every field (theory.md §5.2): what it predicts, seen as a velocity for the
    // ODE and as a denoiser x̂1 for the final step. The SDE drift u + σ²/2·s is built from the
    // velocity view by fmd::sample (theory.md §7.6): one network evaluation per step.
    const fmd::Prediction predicts = loss_name == "csm" ? fmd::loss::csm.prediction : fmd::loss::epsilon.prediction;
    auto velocity = fmd::reparameterize(path, net, predicts, fmd::Prediction::velocity);
    auto denoiser = fmd::reparameterize(path, net, predicts, fmd::Prediction::x1);
    const auto grid = fmd::grid::cosine(sample_steps, t0, t_max);
    // Last step: X ~ p_{t_max} ≈ p_data blurred by β = 1 − t_max; return E[z | X] (theory.md §7.5).
    auto denoise = [&](Matrix& x) {
        Matrix y(x.rows(), x.cols());
        denoiser(fmd::In<S>(x), t_max, fmd::Out<S>(y));
        x = y;
    };

    // Quality: sliced W2 to fresh data, averaged over `refs` reference sets. The floor is what
    // exact samples score: the same figure for fresh data sets, averaged over `refs` of them, with
    // its spread (one set of n points is noisy: the share of each moon or mode varies by ~1/√n).
    const int projections = 128, refs = 10;
    std::vector<Matrix> references(refs, Matrix(2, n));
    for (auto& r : references) data.sample(r, rng);
    auto sw2 = [&](const Matrix& x) {
        double sum = 0;
        for (const auto& r : references) sum += fmd::metrics::sliced_wasserstein(x, r, projections, rng);
        return sum / refs;
    };
    Matrix fresh(2, n);
    double floor = 0, floor_sq = 0;
    for (int k = 0; k < refs; ++k) {
        data.sample(fresh, rng);
        const double d = sw2(fresh);
        floor += d / refs;
        floor_sq += d * d / refs;
    }
    const double spread = std::sqrt(std::max(0.0, floor_sq - floor * floor));
    // Start at t0 > 0 (ε̂ or s → u is 0/0 at t = 0, theory.md §5.3) from x_t0 ≈ β_t0 ε, dropping
    // the t0·z term. Every sampler below starts from the same noise.
    Matrix noise(2, n);
    fmd::fill_normal(noise, rng);
    noise *= S(path.coefficients(t0).beta);
    std::printf("sliced W2 to fresh data (%ld points, %d projections, mean over %d reference sets); %ld steps on a cosine grid [%g, %g]:\n", n,
                projections, refs, sample_steps, t0, t_max);
    std::printf("  floor: fresh data sets                       %.4f ± %.4f\n", floor, spread);
    std::printf("  the start, N(0, β_t0² I)                     %.4f\n", sw2(noise));

    // Results for the plotting script: each sampler's points as a 2 x n matrix, distances in info.json.
    const std::string dir = out + "/04_score_sde";
    npy::save(dir + "/data.npy", fresh);
    std::vector<double> dists;

    // ODE: Heun on the velocity view (theory.md §7.2), then the denoising step.
    {
        Matrix x = noise;
        fmd::solver::Heun<S> heun;
        const auto stats = fmd::sample(velocity, x, grid, heun);
        denoise(x);
        const double d = sw2(x);
        std::printf("  ODE, Heun                         (%4ld NFE) %.4f\n", stats.nfe + 1, d);
        npy::save(dir + "/ode.npy", x);
        dists.push_back(d);
    }
    // SDE: Euler–Maruyama with constant σ (theory.md §2.4, §7.6, §7.7), same grid and noise.
    for (std::size_t k = 0; k < sigmas.size(); ++k) {
        Matrix x = noise;
        fmd::solver::EulerMaruyama<S> em(fmd::ConstantSigma(sigmas[k]));
        const auto stats = fmd::sample(path, velocity, x, grid, em, rng);
        denoise(x);
        const double d = sw2(x);
        std::printf("  SDE, Euler-Maruyama, sigma = %-4g (%4ld NFE) %.4f\n", sigmas[k], stats.nfe + 1, d);
        npy::save(dir + "/sde_" + std::to_string(k) + ".npy", x);
        dists.push_back(d);
    }
    npy::Json info;
    info.add("data", data_name).add("loss", loss_name).add("sigmas", sigmas).add("sw2", dists).add("floor", floor).add("spread", spread);
    info.add("sample_steps", sample_steps).add("t0", t0).add("t_max", t_max);
    info.save(dir + "/info.json");
    std::printf("wrote %s/\nplot: python3 examples/plots/04_score_sde.py %s\n", dir.c_str(), out.c_str());
    return 0;
}

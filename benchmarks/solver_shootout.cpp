// Solver shoot-out: final-state error against a tightly resolved reference, per ODE solver, as a
// function of the number of field evaluations (NFE), on
//   (a) a 2-D Gaussian-mixture oracle (theory.md §8.1, exact marginal velocity),
//   (b) a 64-D Gaussian-mixture oracle,
//   (c) the trained checkerboard model (the seed network of example 02, float32),
//   (d) the same network trained with a slower time embedding (sinusoidal scale 100 instead of
//       the seed's 10000).
// The seed embedding feeds sin/cos(10000·t·ω_k), periods down to 2π/10000 ≈ 6e-4 in t, and the
// trained field keeps part of that: its ∂u/∂t measured over δt = 1e-5 is 9–22× its slope over
// δt = 1e-2, so no solver sees a smooth field until steps are far below 1e-3, and (c) shows it.
// All four use the linear (CondOT) path and start from the same N(0, I) draw at t = 0.
//
// Error = RMS over samples of ‖x_1 − x_1^ref‖₂. The reference is Dopri5 in double at rtol = atol
// = 1e-12 (oracles) or 1e-8 (network, evaluated in double with the same weights); its own error
// is printed as the distance to a solve at 10× looser tolerance.
//
// Headline: the fewest NFE at which each solver's error falls to Euler-1000's error on the same
// problem: bisection on the step count between the ladder budgets that bracket the target
// (assumes the error falls with NFE there); Dopri5: the cheapest run of a tolerance sweep.
// Output: tables on stdout and the error curves as .npy files in OUT/solver_shootout/, from which
// examples/plots/solver_shootout.py draws OUT/solver_shootout.png (log-log error vs NFE).
//
//   solver_shootout [--out DIR] [--checkpoint FILE] [--checkpoint-smooth FILE]
//                   [--train-steps 20000] [--points 512] [--no-network] [--seed 0]
// When FILE does not exist the model is trained for --train-steps steps first (batch 64, AdamW
// 1e-4, like the seed) and saved there (defaults DIR/shootout_checkerboard.ckpt and
// DIR/shootout_checkerboard_scale100.ckpt), so later runs reuse it.
// `02_checkerboard --checkpoint FILE` writes a file compatible with --checkpoint.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include <fmd/fmd.hpp>
#include <fmd/nn/nn.hpp>
#include <fmd/train/train.hpp>

#include "common/cli.hpp"
#include "common/npy.hpp"

namespace {

using fmd::Matrix;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;
using Clock = std::chrono::steady_clock;

const std::vector<long> ladder_budgets{4, 8, 16, 32, 64, 128, 1000};

/// One fixed-step solver: NFE(steps) = k·steps + extra; run(x, steps) solves in place.
template <class S>
struct Entry {
    std::string name;
    long k = 1, extra = 0, min_steps = 1;
    std::function<fmd::SolveStats(Matrix<S>&, long)> run;
    long steps_for(long budget) const { return (budget - extra) / k; }
};

/// [0] followed by the EDM ρ-grid with n − 1 steps: n steps from t = 0 (theory.md §7.3).
std::vector<double> edm_from_zero(const Path& path, long n) {
    auto g = fmd::grid::edm(path, n - 1);
    g.insert(g.begin(), 0.0);
    return fmd::grid::from(std::move(g));
}

template <class S, class F>
std::vector<Entry<S>> solvers(F& u, const Path& path) {
    namespace sol = fmd::solver;
    auto fixed = [&u](auto stepper, auto grid) {
        return [&u, stepper, grid](Matrix<S>& x, long n) mutable { return fmd::sample(u, x, grid(n), stepper); };
    };
    auto uniform = [](long n) { return fmd::grid::uniform(n); };
    auto cosine = [](long n) { return fmd::grid::cosine(n); };
    auto edm = [path](long n) { return edm_from_zero(path, n); };
    return {
        {"Euler", 1, 0, 1, fixed(sol::Euler<S>{}, uniform)},
        {"Midpoint", 2, 0, 1, fixed(sol::Midpoint<S>{}, uniform)},
        {"Heun", 2, 0, 1, fixed(sol::Heun<S>{}, uniform)},
        {"Heun, EDM grid", 2, 0, 2, fixed(sol::Heun<S>{}, edm)},
        {"RK4", 4, 0, 1, fixed(sol::RK4<S>{}, uniform)},
        {"AB2", 1, 0, 1, fixed(sol::AB2<S>{}, uniform)},
        {"AB3", 1, 1, 1, fixed(sol::AB3<S>{}, uniform)},
        {"AB3, cosine grid", 1, 1, 1, fixed(sol::AB3<S>{}, cosine)},
        {"DPM++2M", 1, 0, 1, fixed(sol::dpm_solver_2m<S>(path), uniform)},
        {"DPM++2M, cosine grid", 1, 0, 1, fixed(sol::dpm_solver_2m<S>(path), cosine)},
        {"DPM++2M, EDM grid", 1, 0, 2, fixed(sol::dpm_solver_2m<S>(path), edm)},
    };
}

template <class S>
double rms_error(const Matrix<S>& x, const Matrix<double>& ref) {
    return std::sqrt((x.template cast<double>() - ref).colwise().squaredNorm().mean());
}

struct Point {
    long nfe;
    double error;
};
struct Curve {
    std::string name;
    std::vector<Point> ladder;  // at the ladder budgets
    long headline = -1;         // fewest NFE reaching the target; -1: not within 1000
    bool adaptive = false;      // a tolerance sweep (its points are not on the ladder budgets)
};
struct Result {
    std::string label;  // column head of the headline table
    std::string title;  // panel title
    std::string problem;  // title, sample count and scalar type
    double target = 0, reference_error = 0;
    std::vector<Curve> curves;
};

template <class S, class F>
Result shootout(const std::string& label, const std::string& title, F& u, const Path& path, const Matrix<S>& x0, const Matrix<double>& reference, double reference_tol,
               double reference_error) {
    const auto t_start = Clock::now();
    const std::string problem = title + ", " + std::to_string(x0.cols()) + " samples, " + (std::is_same_v<S, float> ? "float32" : "double");
    Result r{label, title, problem, 0.0, reference_error, {}};
    auto entries = solvers<S>(u, path);
    auto solve = [&](Entry<S>& e, long steps) {
        Matrix<S> x = x0;
        const auto stats = e.run(x, steps);
        if (stats.nfe != e.k * steps + e.extra) fmd::detail::fail("solver_shootout", "nfe", e.name, " reported ", stats.nfe);
        return Point{stats.nfe, rms_error(x, reference)};
    };
    r.target = solve(entries[0], 1000).error;  // Euler, 1000 steps
    fmd::ProgressLine progress("  " + label, static_cast<std::int64_t>(entries.size()) + 1, 0, "solvers");
    for (auto& e : entries) {
        progress.update(static_cast<std::int64_t>(r.curves.size()), e.name);
        Curve c{e.name, {}, -1, false};
        for (long b : ladder_budgets) {
            const long steps = e.steps_for(b);
            if (steps >= e.min_steps) c.ladder.push_back(solve(e, steps));
        }
        // Headline: bisect on the step count between the last ladder budget above the target
        // and the first at or below it (the error is taken to fall with NFE in between).
        if (&e == &entries.front()) c.headline = 1000;  // Euler, the target itself
        else
            for (std::size_t i = 0; i < c.ladder.size(); ++i) {
                if (c.ladder[i].error > r.target) continue;
                long hi = (c.ladder[i].nfe - e.extra) / e.k;
                long lo = i == 0 ? e.min_steps - 1 : (c.ladder[i - 1].nfe - e.extra) / e.k;  // lo fails (or is below min_steps)
                while (hi - lo > 1) {
                    const long mid = (lo + hi) / 2;
                    (solve(e, mid).error <= r.target ? hi : lo) = mid;
                }
                c.headline = e.k * hi + e.extra;
                break;
            }
        r.curves.push_back(std::move(c));
    }
    // Dopri5 over a tolerance sweep (rtol = atol), down to what the scalar allows and 1000× above
    // the reference's tolerance (below that the "error" is the reference's own).
    progress.update(static_cast<std::int64_t>(r.curves.size()), "Dopri5");
    Curve c{"Dopri5 (rtol sweep)", {}, -1, true};
    const double floor = std::max(20.0 * static_cast<double>(std::numeric_limits<S>::epsilon()), 1e3 * reference_tol);
    for (double tol = 1e-1; tol >= floor; tol /= std::sqrt(10.0)) {
        fmd::solver::Dopri5<S> dp({.rtol = tol, .atol = tol});
        Matrix<S> x = x0;
        const auto stats = fmd::sample(u, x, fmd::grid::uniform(1), dp);
        c.ladder.push_back({stats.nfe, rms_error(x, reference)});
        if (c.ladder.back().error <= r.target && (c.headline < 0 || stats.nfe < c.headline)) c.headline = stats.nfe;
        if (stats.nfe > 1000) break;
    }
    r.curves.push_back(std::move(c));
    progress.update(static_cast<std::int64_t>(r.curves.size()));
    progress.finish();
    std::printf("  (%s: %.1f s)\n", problem.c_str(), std::chrono::duration<double>(Clock::now() - t_start).count());
    return r;
}

void print(const Result& r) {
    std::printf("\n== %s ==\nEuler-1000 error (target) %.3e; reference error %.1e\n", r.problem.c_str(), r.target, r.reference_error);
    std::printf("%-22s", "solver \\ NFE");
    for (long b : ladder_budgets) std::printf(" %9ld", b);
    std::printf("   fewest NFE to reach target\n");
    for (const auto& c : r.curves) {
        std::printf("%-22s", c.name.c_str());
        if (c.adaptive) {
            std::printf(" ");
            for (const auto& p : c.ladder) std::printf(" %ld:%.1e", p.nfe, p.error);
        } else {
            std::size_t i = 0;
            for (long b : ladder_budgets) {
                if (i < c.ladder.size() && c.ladder[i].nfe <= b && (i + 1 == c.ladder.size() || c.ladder[i + 1].nfe > b))
                    std::printf(" %9.2e", c.ladder[i++].error);
                else std::printf(" %9s", "-");
            }
        }
        if (c.headline > 0) std::printf("   %ld\n", c.headline);
        else std::printf("   > 1000\n");
    }
}

/// Reference final states: Dopri5 in double at `tol`, and its distance to a 10× looser solve.
template <class F>
std::pair<Matrix<double>, double> reference_solution(F& u, const Matrix<double>& x0, double tol) {
    Matrix<double> x = x0, loose = x0;
    fmd::solver::Dopri5<double> tight({.rtol = tol, .atol = tol}), coarse({.rtol = 10 * tol, .atol = 10 * tol});
    fmd::sample(u, x, fmd::grid::uniform(1), tight);
    fmd::sample(u, loose, fmd::grid::uniform(1), coarse);
    return {x, rms_error(loose, x)};
}

fmd::GaussianMixture<double> mixture_64d(fmd::Rng& rng) {
    const int d = 64, K = 16;
    Matrix<double> mu(d, K);
    fmd::fill_normal(mu, rng);
    mu *= 0.5;  // ‖μ_k‖ ≈ 4, like the 2-D ring
    fmd::Vector<double> sd(K), w(K);
    for (int k = 0; k < K; ++k) {
        sd(k) = 0.5 + 0.5 * fmd::uniform01(rng);
        w(k) = 0.5 + fmd::uniform01(rng);
    }
    return {mu, sd, w};
}

/// The seed checkerboard network with sinusoidal time scale `time_scale`: loaded from `file`,
/// or trained and saved there first.
fmd::nn::MLP<float> checkerboard_model(const std::string& file, double time_scale, long train_steps, fmd::Rng& rng) {
    fmd::nn::MLPConfig config{.dim = 2, .width = 512, .depth = 5};
    config.time.scale = time_scale;
    fmd::nn::MLP<float> net(config, rng);
    if (std::filesystem::exists(file)) {
        const auto ck = fmd::train::load_checkpoint<float>(file);
        if (ck.architecture != net.describe()) fmd::detail::fail("solver_shootout", "checkpoint", "'", file, "' holds ", ck.architecture, ", expected ", net.describe());
        net.parameters() = ck.parameters;
        std::printf("checkerboard model: loaded %s (time scale %g, %llu training steps)\n", file.c_str(), time_scale, static_cast<unsigned long long>(ck.step));
        return net;
    }
    std::printf("checkerboard model: training the seed MLP (time scale %g) for %ld steps (saved to %s)\n", time_scale, train_steps, file.c_str());
    const fmd::data::Checkerboard board;
    Matrix<float> points(2, 10000);
    board.sample(points, rng);
    const fmd::data::Dataset<float> data(points);
    fmd::nn::AdamW<float> opt(net.parameter_count(), {.lr = 1e-4});
    Path path;
    fmd::train::Trainer trainer(path, fmd::loss::cfm, net, opt, {.batch_size = 64});
    fmd::train::Progress progress(std::max(1L, train_steps / 10));
    fmd::train::CheckpointEvery saver{train_steps, file};
    fmd::train::fit(trainer, data, rng, train_steps, progress, saver);
    return net;
}

/// One problem's curves for the plotting script: rows (curve index, NFE, error).
Eigen::MatrixXd curve_points(const Result& r) {
    std::vector<std::array<double, 3>> rows;
    for (std::size_t k = 0; k < r.curves.size(); ++k)
        for (const auto& p : r.curves[k].ladder) rows.push_back({static_cast<double>(k), static_cast<double>(p.nfe), p.error});
    Eigen::MatrixXd m(static_cast<Eigen::Index>(rows.size()), 3);
    for (std::size_t i = 0; i < rows.size(); ++i) m.row(static_cast<Eigen::Index>(i)) << rows[i][0], rows[i][1], rows[i][2];
    return m;
}

}  // namespace

int main(int argc, char** argv) {
    cli::App app("Solver shoot-out: final-state error against NFE per ODE solver, on mixtures and trained checkerboard MLPs");
    std::string out = ".", ckpt, ckpt_smooth;
    long train_steps = 20000, n_net = 512;
    bool no_network = false;
    unsigned long seed = 0;
    app.add_option("--out", out, "directory for the results (and the plot drawn from them) and the trained models");
    app.add_option("--checkpoint", ckpt, "the seed-embedding model (trained and saved when missing; default OUT/shootout_checkerboard.ckpt)");
    app.add_option("--checkpoint-smooth", ckpt_smooth, "the time-scale-100 model (default OUT/shootout_checkerboard_scale100.ckpt)");
    app.add_option("--train-steps", train_steps, "training steps of each model")->check(CLI::PositiveNumber);
    app.add_option("--points", n_net, "points solved on the network fields")->check(CLI::PositiveNumber);
    app.add_flag("--no-network", no_network, "only the mixture oracles (about 20 s)");
    app.add_option("--seed", seed, "random seed");
    cli::parse(app, argc, argv);
    if (ckpt.empty()) ckpt = out + "/shootout_checkerboard.ckpt";
    if (ckpt_smooth.empty()) ckpt_smooth = out + "/shootout_checkerboard_scale100.ckpt";
    const bool network = !no_network;
    std::filesystem::create_directories(out);

    fmd::Rng rng(seed);
    const Path path;
    std::vector<Result> results;
    const double oracle_tol = 1e-12, network_tol = 1e-8;  // reference Dopri5 tolerances

    auto oracle_problem = [&](const std::string& label, const std::string& title, const fmd::GaussianMixture<double>& mixture, int n) {
        fmd::MixtureOracle oracle(path, mixture);
        auto u = oracle.velocity_field();
        Matrix<double> x0(mixture.dim(), n);
        fmd::fill_normal(x0, rng);
        const auto [ref, ref_err] = reference_solution(u, x0, oracle_tol);
        results.push_back(shootout(label, title, u, path, x0, ref, oracle_tol, ref_err));
        print(results.back());
    };
    // (a) 2-D: 8 Gaussians of std 0.25 on a circle of radius 4 (sharp late-time dynamics)
    oracle_problem("2-D mixture", "2-D mixture (8-ring, std 0.25)", fmd::GaussianMixture<double>::ring(8, 4.0, 0.25), 2000);
    // (b) 64-D: 16 components, stds 0.5 … 1
    oracle_problem("64-D mixture", "64-D mixture (16 components)", mixture_64d(rng), 1000);
    if (network) {  // (c), (d): trained checkerboard networks, float32; references in double
        Matrix<double> x0(2, n_net);
        fmd::fill_normal(x0, rng);
        const Matrix<float> x0f = x0.cast<float>();
        const fmd::data::Checkerboard board;
        for (const auto& [scale, file, label, title] :
             {std::tuple{10000.0, ckpt, std::string("checkerboard MLP"), std::string("checkerboard MLP (seed, time scale 10000)")},
              std::tuple{100.0, ckpt_smooth, std::string("MLP, t-scale 100"), std::string("checkerboard MLP (time scale 100)")}}) {
            auto net = checkerboard_model(file, scale, train_steps, rng);
            fmd::nn::MLP<double> net64(net.config());
            net64.parameters() = net.parameters().cast<double>();
            const auto [ref, ref_err] = reference_solution(net64, x0, network_tol);
            std::printf("  filled-square fraction of the reference samples: %.3f\n", board.filled_fraction(ref));
            results.push_back(shootout(label, title, net, path, x0f, ref, network_tol, ref_err));
            print(results.back());
        }
    }

    std::printf("\nHeadline: fewest NFE to reach Euler-1000's final-state error\n%-22s", "solver");
    for (const auto& r : results) std::printf(" %16s", r.label.c_str());
    std::printf("\n");
    for (std::size_t k = 0; k < results[0].curves.size(); ++k) {
        std::printf("%-22s", results[0].curves[k].name.c_str());
        for (const auto& r : results) {
            const long h = r.curves[k].headline;
            if (h > 0) std::printf(" %16ld", h);
            else std::printf(" %16s", "> 1000");
        }
        std::printf("\n");
    }

    const std::string dir = out + "/solver_shootout";
    std::vector<std::string> titles, curves;
    std::vector<double> targets;
    for (std::size_t i = 0; i < results.size(); ++i) {
        npy::save(dir + "/problem_" + std::to_string(i) + ".npy", curve_points(results[i]));
        titles.push_back(results[i].title);
        targets.push_back(results[i].target);
    }
    for (const auto& c : results[0].curves) curves.push_back(c.name);
    npy::Json info;
    info.add("titles", titles).add("targets", targets).add("curves", curves);
    info.save(dir + "/info.json");
    std::printf("wrote %s/\nplot: python3 examples/plots/solver_shootout.py %s\n", dir.c_str(), out.c_str());
    return 0;
}

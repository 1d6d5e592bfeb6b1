// Example 01: sampling a 2-D Gaussian mixture with its exact marginal fields (theory.md §8.1).
// N(0, I) noise is pushed to the data with the ODE (Euler) and with the SDE of theory.md §3.7
// (Euler–Maruyama, several σ). Writes a panel of samples and a panel of trajectories, and prints
// a sliced-Wasserstein distance to fresh data beside the floor set by two fresh data sets.
//
// Copy this file to start: swap the oracle for your own VectorField (a trained network) and the
// linear schedule for your own.
#include <cstdio>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"

using S = double;

int main(int argc, char** argv) {
    cli::App app("Example 01: N(0, I) pushed to a 2-D Gaussian mixture by its exact velocity (ODE) and by SDEs");
    std::string out = ".";
    long n = 2000, steps = 100, sde_steps = 500;
    unsigned long seed = 0;
    app.add_option("--out", out, "directory for the pictures");
    app.add_option("--n", n, "samples")->check(CLI::Range(2L, 10'000'000L));
    app.add_option("--steps", steps, "Euler steps of the ODE")->check(CLI::PositiveNumber);
    app.add_option("--sde-steps", sde_steps, "Euler-Maruyama steps")->check(CLI::PositiveNumber);
    app.add_option("--seed", seed, "random seed");
    cli::parse(app, argc, argv);

    // The data: 8 Gaussians on a circle, and the linear (CondOT) path x_t = t z + (1 − t) ε.
    const auto mixture = fmd::GaussianMixture<S>::ring(8, 4.0, 0.35);
    fmd::GaussianPath<fmd::schedule::Linear> path;
    fmd::MixtureOracle oracle(path, mixture);
    auto velocity = oracle.velocity_field();

    fmd::Rng rng(seed);
    fmd::Matrix<S> data(2, n), reference(2, n), noise(2, n);
    mixture.sample(data, rng);
    mixture.sample(reference, rng);
    fmd::fill_normal(noise, rng);

    const double floor = fmd::metrics::sliced_wasserstein(data, reference, 64, rng);
    std::printf("sliced W2 between two data sets of %ld points (noise floor): %.4f\n", n, floor);
    std::printf("sliced W2 of N(0, I) to the data:                          %.4f\n",
                fmd::metrics::sliced_wasserstein(noise, data, 64, rng));

    const double lim = 6.5;
    auto panel = [&] { return plot::Canvas(360, 360, -lim, lim, -lim, lim); };
    std::vector<plot::Canvas> panels;
    std::vector<std::string> titles;
    auto add = [&](const fmd::Matrix<S>& pts, plot::Color c, const std::string& title) {
        panels.push_back(panel());
        panels.back().scatter(pts, c);
        panels.back().frame();
        titles.push_back(title);
    };
    add(data, plot::black, "data");
    add(noise, plot::gray, "N(0,I), t = 0");

    // ODE: Euler on the uniform grid t_k = k/n (theory.md §7.1, §7.2); record a few trajectories.
    fmd::Matrix<S> x = noise;
    fmd::solver::Euler<S> euler;
    fmd::TrajectoryRecorder<S> ode_paths(24);
    const auto ode = fmd::sample(velocity, x, fmd::grid::uniform(steps), euler, ode_paths);
    const double ode_dist = fmd::metrics::sliced_wasserstein(x, data, 64, rng);
    std::printf("ODE, Euler, %4ld steps (%ld NFE):                         %.4f\n", steps, ode.nfe, ode_dist);
    add(x, plot::blue, "ODE Euler " + std::to_string(steps) + " steps");

    // SDE: drift u + σ²/2 s with s converted from u (theory.md §7.6), Euler–Maruyama.
    // The last step starts at 1 − 1/sde_steps, so the converted score is never taken at t = 1.
    std::vector<fmd::TrajectoryRecorder<S>> sde_paths;
    const std::vector<double> sigmas{0.5, 1.0, 2.0};
    const std::vector<plot::Color> colors{plot::green, plot::orange, plot::red};
    for (std::size_t k = 0; k < sigmas.size(); ++k) {
        x = noise;
        fmd::solver::EulerMaruyama<S> em(fmd::ConstantSigma(sigmas[k]));
        sde_paths.emplace_back(24);
        const auto sde = fmd::sample(path, velocity, x, fmd::grid::uniform(sde_steps), em, rng, sde_paths.back());
        const double dist = fmd::metrics::sliced_wasserstein(x, data, 64, rng);
        std::printf("SDE, Euler-Maruyama, sigma = %.1f, %4ld steps (%ld NFE):   %.4f\n", sigmas[k], sde_steps, sde.nfe, dist);
        char title[64];
        std::snprintf(title, sizeof title, "SDE sigma=%.1f", sigmas[k]);
        add(x, colors[k], title);
    }
    plot::save_panels(panels, titles, 3, out + "/01_samples.png");

    // Trajectories: ODE paths are smooth, SDE paths wander but end on the same mixture.
    std::vector<plot::Canvas> tp;
    std::vector<std::string> tt;
    auto draw = [&](const fmd::TrajectoryRecorder<S>& rec, plot::Color c, const std::string& title) {
        tp.push_back(panel());
        tp.back().scatter(data, plot::Color{215, 215, 215}, 1.0, 0.5);
        for (std::size_t k = 0; k + 1 < rec.states.size(); ++k)
            for (Eigen::Index j = 0; j < rec.states[k].cols(); ++j)
                tp.back().line(rec.states[k](0, j), rec.states[k](1, j), rec.states[k + 1](0, j), rec.states[k + 1](1, j), c, 0.8);
        for (Eigen::Index j = 0; j < rec.states.back().cols(); ++j) tp.back().dot(rec.states.back()(0, j), rec.states.back()(1, j), plot::black, 2.5, 1.0);
        tp.back().frame();
        tt.push_back(title);
    };
    draw(ode_paths, plot::blue, "ODE trajectories");
    for (std::size_t k = 0; k < sigmas.size(); ++k) draw(sde_paths[k], colors[k], titles[3 + k] + " paths");
    plot::save_panels(tp, tt, 2, out + "/01_trajectories.png");
    std::printf("wrote %s/01_samples.png and %s/01_trajectories.png\n", out.c_str(), out.c_str());
    return 0;
}

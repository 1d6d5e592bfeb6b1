// Example 01: sampling a 2-D Gaussian mixture with its exact marginal fields (theory.md §8.1).
// N(0, I) noise is pushed to the data with the ODE (Euler) and with the SDE of theory.md §3.7
// (Euler–Maruyama, several σ). Prints a sliced-Wasserstein distance to fresh data beside the floor
// set by two fresh data sets, and writes the samples and a few trajectories as .npy files for
// examples/plots/01_mixture_sampling.py (01_samples.png, 01_trajectories.png).
//
// Copy this file to start: swap the oracle for your own VectorField (a trained network) and the
// linear schedule for your own.
#include <cstdio>
#include <string>
#include <vector>

#include <fmd/fmd.hpp>

#include "common/cli.hpp"
#include "common/npy.hpp"

using S = double;

int main(int argc, char** argv) {
    cli::App app("Example 01: N(0, I) pushed to a 2-D Gaussian mixture by its exact velocity (ODE) and by SDEs");
    std::string out = ".";
    long n = 2000, steps = 100, sde_steps = 500;
    unsigned long seed = 0;
    app.add_option("--out", out, "directory for the results (and the pictures drawn from them)");
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

    // Results for the plotting script: samples as 2 x n matrices, trajectories as (times, 2, paths).
    const std::string dir = out + "/01_mixture_sampling";
    npy::Json info;
    info.add("floor", floor).add("steps", steps).add("sde_steps", sde_steps);
    npy::save(dir + "/data.npy", data);
    npy::save(dir + "/noise.npy", noise);

    // ODE: Euler on the uniform grid t_k = k/n (theory.md §7.1, §7.2); record a few trajectories.
    fmd::Matrix<S> x = noise;
    fmd::solver::Euler<S> euler;
    fmd::TrajectoryRecorder<S> ode_paths(24);
    const auto ode = fmd::sample(velocity, x, fmd::grid::uniform(steps), euler, ode_paths);
    const double ode_dist = fmd::metrics::sliced_wasserstein(x, data, 64, rng);
    std::printf("ODE, Euler, %4ld steps (%ld NFE):                         %.4f\n", steps, ode.nfe, ode_dist);
    npy::save(dir + "/ode.npy", x);
    npy::save(dir + "/ode_paths.npy", ode_paths.states);
    info.add("ode_sw2", ode_dist);

    // SDE: drift u + σ²/2 s with s converted from u (theory.md §7.6), Euler–Maruyama.
    // The last step starts at 1 − 1/sde_steps, so the converted score is never taken at t = 1.
    const std::vector<double> sigmas{0.5, 1.0, 2.0};
    std::vector<double> sde_dists;
    for (std::size_t k = 0; k < sigmas.size(); ++k) {
        x = noise;
        fmd::solver::EulerMaruyama<S> em(fmd::ConstantSigma(sigmas[k]));
        fmd::TrajectoryRecorder<S> sde_paths(24);
        const auto sde = fmd::sample(path, velocity, x, fmd::grid::uniform(sde_steps), em, rng, sde_paths);
        sde_dists.push_back(fmd::metrics::sliced_wasserstein(x, data, 64, rng));
        std::printf("SDE, Euler-Maruyama, sigma = %.1f, %4ld steps (%ld NFE):   %.4f\n", sigmas[k], sde_steps, sde.nfe, sde_dists.back());
        npy::save(dir + "/sde_" + std::to_string(k) + ".npy", x);
        npy::save(dir + "/sde_paths_" + std::to_string(k) + ".npy", sde_paths.states);
    }
    info.add("sigmas", sigmas).add("sde_sw2", sde_dists);
    info.save(dir + "/info.json");
    std::printf("wrote %s/\nplot: python3 examples/plots/01_mixture_sampling.py %s\n", dir.c_str(), out.c_str());
    return 0;
}


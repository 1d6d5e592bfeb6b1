// Uses the installed package: a user schedule, the exact mixture field, Euler sampling.
#include <cstdio>

#include <fmd/fmd.hpp>

struct MySchedule {  // a user's own schedule: α = t², β = 1 − t²
    double alpha(double t) const { return t * t; }
    double beta(double t) const { return 1 - t * t; }
    double d_alpha(double t) const { return 2 * t; }
    double d_beta(double t) const { return -2 * t; }
};

int main() {
    fmd::GaussianPath<MySchedule> path;
    fmd::MixtureOracle oracle(path, fmd::GaussianMixture<double>::ring(4, 2.0, 0.2));
    fmd::Rng rng(7);
    fmd::Matrix<double> x(2, 256);
    fmd::fill_normal(x, rng);
    fmd::solver::Euler<double> euler;
    const auto stats = fmd::sample(oracle.velocity_field(), x, fmd::grid::uniform(200), euler);
    const double radius = x.colwise().norm().mean();
    std::printf("fmd consumer: %ld NFE, mean radius %.3f (expected about 2)\n", stats.nfe, radius);
    return (stats.nfe == 200 && radius > 1.7 && radius < 2.3) ? 0 : 1;
}

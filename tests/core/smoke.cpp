#include <catch2/catch.hpp>
#include <fmd/fmd.hpp>

TEST_CASE("linear path CFM target is x1 - x0", "[loss]") {
    fmd::GaussianPath<fmd::schedule::Linear> path;
    fmd::Rng rng(1);
    fmd::Matrix<double> z(2, 5), e(2, 5), tgt(2, 5);
    fmd::fill_normal(z, rng);
    fmd::fill_normal(e, rng);
    fmd::Row<double> t(5);
    fmd::time_sampler::Uniform{}(t, rng);
    fmd::loss::target(fmd::loss::cfm, path, z, e, t, tgt);
    CHECK((tgt - (z - e)).norm() < 1e-14);
    auto mix = fmd::GaussianMixture<double>::ring(8, 3.0, 0.3);
    fmd::MixtureOracle oracle(path, mix);
    fmd::Matrix<double> x(2, 100);
    fmd::fill_normal(x, rng);
    fmd::solver::Heun<double> heun;
    auto st = fmd::integrate(oracle.velocity_field(), x, fmd::grid::uniform(50), heun);
    CHECK(st.nfe == 100);
    fmd::solver::EulerMaruyama<double> em(fmd::ConstantSigma(0.5));
    auto u = oracle.velocity_field();
    auto st2 = fmd::sample(path, u, x, fmd::grid::uniform(50, 0.0, 0.99), em, rng);
    CHECK(st2.nfe == 50);
}

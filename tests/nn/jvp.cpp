// nn::MLP::jvp, the forward-mode Jacobian–vector product: against central differences of the
// sampling call for every activation and time embedding, conditional networks at ∅, and the
// exact-divergence likelihood (theory.md §8.4) computed through it against central differences.
#include <cmath>
#include <string>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>
#include <fmd/nn/nn.hpp>

using fmd::Matrix;
using fmd::nn::Activation;
using fmd::nn::Embedding;
using fmd::nn::MLP;
using fmd::nn::MLPConfig;

namespace {

Matrix<double> normal_matrix(long rows, long cols, fmd::Rng& rng) {
    Matrix<double> m(rows, cols);
    fmd::fill_normal(m, rng);
    return m;
}

/// (u(x + εv) − u(x − εv)) / 2ε, column by column.
Matrix<double> central_jvp(MLP<double>& net, const Matrix<double>& x, double t, const Matrix<double>& v, double eps) {
    Matrix<double> up(net.output_dim(), x.cols()), down(net.output_dim(), x.cols());
    const Matrix<double> xp = x + eps * v, xm = x - eps * v;
    net(xp, t, up);
    net(xm, t, down);
    return (up - down) / (2 * eps);
}

/// The network seen as a plain field: the likelihood falls back to central differences.
struct WithoutJvp {
    MLP<double>* net;
    void operator()(fmd::In<double> x, double t, fmd::Out<double> out) { (*net)(x, t, out); }
};

}  // namespace

static_assert(fmd::JvpField<MLP<double>, double>);
static_assert(fmd::JvpField<MLP<float>, float>);
static_assert(!fmd::JvpField<WithoutJvp, double>);

TEST_CASE("MLP jvp equals central differences of the sampling call", "[nn][jvp]") {
    fmd::Rng rng(7);
    const Activation acts[] = {Activation::relu, Activation::silu};
    const Embedding embs[] = {Embedding::sinusoidal, Embedding::fourier};
    for (Activation act : acts)
        for (Embedding emb : embs)
            for (long classes : {0L, 3L}) {
                MLPConfig c{.dim = 3, .width = 24, .depth = 3, .activation = act, .time = {.kind = emb}, .num_classes = classes};
                if (emb == Embedding::fourier) c.time.sigma = 2.0;
                MLP<double> net(c, rng);
                // A random class table, so the ∅ column the jvp must use is not zero.
                if (classes > 0) net.parameters().tail(net.config().width * (classes + 1)) = normal_matrix(net.config().width * (classes + 1), 1, rng);
                const Matrix<double> x = normal_matrix(3, 9, rng), v = normal_matrix(3, 9, rng);
                for (double t : {0.0, 0.37, 0.93}) {
                    Matrix<double> j(3, 9);
                    net.jvp(x, t, v, j);
                    const Matrix<double> fd = central_jvp(net, x, t, v, 1e-6);
                    INFO("activation " << static_cast<int>(act) << ", embedding " << static_cast<int>(emb) << ", classes " << classes << ", t = " << t);
                    CHECK((j - fd).cwiseAbs().maxCoeff() <= 1e-6 * fd.cwiseAbs().maxCoeff());
                }
            }
}

TEST_CASE("MLP jvp is linear in v and exact at the scale of float", "[nn][jvp]") {
    fmd::Rng rng(11);
    MLP<double> net({.dim = 2, .width = 32, .depth = 2, .activation = Activation::silu}, rng);
    const Matrix<double> x = normal_matrix(2, 5, rng), v = normal_matrix(2, 5, rng), w = normal_matrix(2, 5, rng);
    Matrix<double> jv(2, 5), jw(2, 5), jsum(2, 5);
    net.jvp(x, 0.5, v, jv);
    net.jvp(x, 0.5, w, jw);
    const Matrix<double> combo = 2.0 * v - 3.0 * w;
    net.jvp(x, 0.5, combo, jsum);
    CHECK((jsum - (2.0 * jv - 3.0 * jw)).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + jsum.cwiseAbs().maxCoeff()));

    // Float network with the same weights: the float jvp agrees with the double one.
    MLP<float> net32(net.config());
    net32.parameters() = net.parameters().cast<float>();
    Matrix<float> j32(2, 5);
    net32.jvp(x.cast<float>(), 0.5, v.cast<float>(), j32);
    CHECK((j32.cast<double>() - jv).cwiseAbs().maxCoeff() <= 1e-4 * jv.cwiseAbs().maxCoeff());
}

TEST_CASE("Likelihood of an MLP through jvp equals the central-difference likelihood", "[nn][jvp][likelihood]") {
    fmd::Rng rng(3);
    MLP<double> net({.dim = 2, .width = 32, .depth = 2, .activation = Activation::silu}, rng);
    const Matrix<double> x = normal_matrix(2, 6, rng);
    fmd::solver::RK4<double> rk4;
    const auto with = fmd::log_likelihood(net, x, fmd::grid::uniform(40), rk4);
    WithoutJvp plain{&net};
    const auto without = fmd::log_likelihood(plain, x, fmd::grid::uniform(40), rk4);
    CHECK(with.jvp_evals > 0);
    CHECK(without.jvp_evals == 0);
    CHECK((with.log_p - without.log_p).cwiseAbs().maxCoeff() <= 1e-6);
}

TEST_CASE("MLP jvp rejects a tangent of the wrong shape", "[nn][jvp]") {
    MLP<double> net({.dim = 2, .width = 8, .depth = 1}, 0);
    const Matrix<double> x = Matrix<double>::Zero(2, 4), v = Matrix<double>::Zero(3, 4);
    Matrix<double> out(2, 4);
    CHECK_THROWS_WITH(net.jvp(x, 0.5, v, out), Catch::Contains("argument 'v'"));
    CHECK_THROWS_WITH(net.jvp(x, std::nan(""), x, out), Catch::Contains("argument 't'"));
}

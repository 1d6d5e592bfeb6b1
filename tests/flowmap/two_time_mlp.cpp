// nn::MLP with two_times: the flow-map call, the training forward at per-sample (t, r), and
// tangent() along (v, ṫ, ṙ) against central differences of the forward (theory.md §9.4 needs
// d/dt ū along (u, 1, 0) exactly); parameter layout and checkpoints of one-time networks unchanged.
#include <cmath>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>
#include <fmd/nn/nn.hpp>

// One namespace for the whole file: the test sources are compiled together (unity build).
namespace two_time_mlp_test {

using fmd::Matrix;
using fmd::Row;
using fmd::nn::Activation;
using fmd::nn::Embedding;
using fmd::nn::MLP;
using fmd::nn::MLPConfig;


Matrix<double> normal_matrix(long rows, long cols, fmd::Rng& rng) {
    Matrix<double> m(rows, cols);
    fmd::fill_normal(m, rng);
    return m;
}

// ū at (x + εv, t + εṫ, r + εṙ) by a training forward.
Matrix<double> shifted(MLP<double>& net, const Matrix<double>& x, const Row<double>& t, const Row<double>& r, const Matrix<double>& v,
                       double td, double rd, double eps, fmd::Labels labels) {
    Matrix<double> out(net.output_dim(), x.cols());
    const Matrix<double> xs = x + eps * v;
    const Row<double> ts = (t.array() + eps * td).matrix(), rs = (r.array() + eps * rd).matrix();
    if (labels.empty()) net.forward(xs, ts, rs, out);
    else net.forward(xs, ts, rs, labels, out);
    return out;
}


static_assert(fmd::nn::TwoTimeNetwork<MLP<double>, double>);
static_assert(fmd::FlowMap<MLP<float>, float>);

TEST_CASE("two-time MLP: tangent() equals central differences in x, t and r", "[nn][flowmap]") {
    fmd::Rng rng(11);
    for (Activation act : {Activation::relu, Activation::silu})
        for (Embedding emb : {Embedding::sinusoidal, Embedding::fourier})
            for (long classes : {0L, 2L}) {
                MLPConfig c{.dim = 3, .width = 20, .depth = 2, .activation = act, .time = {.kind = emb, .scale = 20.0, .sigma = 1.5},
                            .num_classes = classes, .two_times = true};
                MLP<double> net(c, rng);
                const long n = 7;
                const Matrix<double> x = normal_matrix(3, n, rng), v = normal_matrix(3, n, rng);
                Row<double> t(n), r(n);
                for (long j = 0; j < n; ++j) {
                    t(j) = 0.1 * static_cast<double>(j) + 0.05;
                    r(j) = t(j) + (j % 3 == 0 ? 0.0 : 0.3);
                }
                std::vector<int> lab(static_cast<std::size_t>(n));
                for (long j = 0; j < n; ++j) lab[static_cast<std::size_t>(j)] = static_cast<int>(j % (classes + 1));
                const fmd::Labels labels = classes ? fmd::Labels(lab) : fmd::Labels{};
                for (auto [td, rd] : {std::pair{1.0, 0.0}, std::pair{0.0, 1.0}, std::pair{0.7, -0.4}}) {
                    Matrix<double> pred(3, n), tan(3, n);
                    if (labels.empty()) net.forward(x, t, r, pred);
                    else net.forward(x, t, r, labels, pred);
                    net.tangent(v, td, rd, tan);
                    const double h = 1e-5;
                    const Matrix<double> fd = (shifted(net, x, t, r, v, td, rd, h, labels) - shifted(net, x, t, r, v, td, rd, -h, labels)) / (2 * h);
                    INFO("activation " << int(act) << ", embedding " << int(emb) << ", classes " << classes << ", (ṫ, ṙ) = " << td << ", " << rd);
                    // ReLU kinks: a difference across a kink is not a derivative; none is crossed at this step for these draws.
                    CHECK((tan - fd).norm() <= 1e-6 * fd.norm());
                }
            }
}

TEST_CASE("two-time MLP: the backward pass after tangent() still gives the forward's gradients", "[nn][flowmap]") {
    fmd::Rng rng(3);
    MLP<double> net({.dim = 2, .width = 16, .depth = 2, .activation = Activation::silu, .two_times = true}, rng);
    const Matrix<double> x = normal_matrix(2, 5, rng), g = normal_matrix(2, 5, rng);
    Row<double> t = Row<double>::Constant(5, 0.2), r = Row<double>::Constant(5, 0.9);
    Matrix<double> out(2, 5), tan(2, 5);
    net.forward(x, t, r, out);
    net.backward(g);
    const fmd::Vector<double> plain = net.gradients();
    net.forward(x, t, r, out);
    net.tangent(x, 1.0, 0.0, tan);
    net.backward(g);
    CHECK(net.gradients() == plain);
    // Gradient of <g, ū> in the interval layer against a central difference of one weight.
    const long k = net.layer_offset(net.interval_layer()) + 3;
    const double h = 1e-6, w = net.parameters()(k);
    net.parameters()(k) = w + h;
    net.forward(x, t, r, out);
    const double up = (g.array() * out.array()).sum();
    net.parameters()(k) = w - h;
    net.forward(x, t, r, out);
    const double down = (g.array() * out.array()).sum();
    net.parameters()(k) = w;
    CHECK(plain(k) == Approx((up - down) / (2 * h)).epsilon(1e-6));
}

TEST_CASE("two-time MLP: the flow-map call equals the training forward; one-time calls are r = t", "[nn][flowmap]") {
    fmd::Rng rng(5);
    MLP<double> net({.dim = 2, .width = 24, .depth = 3, .two_times = true}, rng);
    const Matrix<double> x = normal_matrix(2, 6, rng);
    Matrix<double> a(2, 6), b(2, 6), c(2, 6);
    net(x, 0.25, 0.75, a);
    net.forward(x, Row<double>::Constant(6, 0.25), Row<double>::Constant(6, 0.75), b);
    CHECK((a - b).norm() <= 1e-12 * b.norm());
    net(x, 0.4, c);
    net(x, 0.4, 0.4, a);
    CHECK(c == a);
    net(x, 0.4, 0.41, b);
    CHECK((b - a).norm() > 0.0);  // r enters

    // Layout: the interval layer comes after Linear_out; a one-time network's layout is the old one.
    MLP<double> one({.dim = 2, .width = 24, .depth = 3}, rng);
    CHECK(net.parameter_count() == one.parameter_count() + 24 * 24 + 24);
    CHECK(net.layer_offset(net.interval_layer()) == one.parameter_count());
    CHECK(one.describe().find("two_times") == std::string::npos);
    CHECK(net.describe().find("two_times=1") != std::string::npos);
    CHECK_THROWS_WITH(one.interval_layer(), Catch::Contains("two_times"));
    CHECK_THROWS_WITH(one(x, 0.1, 0.2, a), Catch::Contains("'r'") && Catch::Contains("two_times"));
    Matrix<double> tan(2, 6);
    one.forward(x, Row<double>::Constant(6, 0.3), a);
    CHECK_THROWS_WITH(one.tangent(x, 1.0, 1.0, tan), Catch::Contains("'r_dot'"));
    MLP<double> fresh({.dim = 2, .width = 8, .depth = 1, .two_times = true}, rng);
    CHECK_THROWS_WITH(fresh.tangent(x, 1.0, 0.0, tan), Catch::Contains("preceding forward"));
    net.forward(x, Row<double>::Constant(6, 0.3), Row<double>::Constant(6, 0.5), a);
    CHECK_THROWS_WITH(net.tangent(x, std::nan(""), 0.0, tan), Catch::Contains("'t_dot'"));
    Row<double> bad = Row<double>::Constant(6, 0.5);
    bad(2) = std::nan("");
    CHECK_THROWS_WITH(net.forward(x, Row<double>::Constant(6, 0.3), bad, a), Catch::Contains("'r'"));
}

}  // namespace two_time_mlp_test

// Class-conditional nn::MLP (theory.md §6.9): the class table's gradient (and every other
// layer's) against central finite differences with labelled batches that include ∅ and repeated
// labels; the labelled sampling call against the labelled training pass; ∅ as the unlabelled
// call; describe() and seed-restorable Fourier frequencies; bad labels name the argument.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/field/guidance.hpp>
#include <fmd/nn/nn.hpp>

#include "support.hpp"

using fmd::Matrix;
using fmd::Row;
using fmd::Vector;
using fmd::nn::Activation;
using fmd::nn::Embedding;
using fmd::nn::MLP;
using fmd::nn::MLPConfig;
using Catch::Matchers::Contains;

static_assert(fmd::nn::ConditionalNetwork<MLP<float>, float>);
static_assert(fmd::nn::ConditionalNetwork<MLP<double>, double>);
static_assert(fmd::nn::Network<MLP<double>, double>);  // unconditional use still models Network

namespace {

using fmd_test::normal;
using fmd_test::rel_err;

}  // namespace

TEST_CASE("Conditional MLP: parameter count and layout; num_classes = 0 changes nothing", "[nn]") {
    const MLPConfig base{.dim = 3, .out_dim = 2, .width = 8, .depth = 2, .time = {.channels = 6}};
    MLPConfig cond = base;
    cond.num_classes = 4;
    CHECK(MLP<double>::parameter_count(cond) == MLP<double>::parameter_count(base) + 8 * 5);
    // Same seed: the shared layers get the same initial values (the table is drawn last).
    const MLP<double> a(base, std::uint64_t{3}), b(cond, std::uint64_t{3});
    CHECK(b.parameters().head(a.parameter_count()) == a.parameters());
    CHECK(b.class_table_offset() == a.parameter_count());
    CHECK(b.null_label() == 4);
    MLP<double> c(cond, std::uint64_t{3});
    CHECK(c.class_table().rows() == 8);
    CHECK(c.class_table().cols() == 5);
    CHECK(c.class_table().cwiseAbs().maxCoeff() <= 1.0);
    CHECK(c.class_table().cwiseAbs().maxCoeff() > 0.5);
}

TEST_CASE("Conditional MLP: backward against central finite differences, class table included", "[nn]") {
    for (const Activation act : {Activation::relu, Activation::silu}) {
        INFO("activation " << static_cast<int>(act));
        fmd::Rng rng(77);
        MLP<double> net({.dim = 2, .width = 10, .depth = 2, .activation = act, .time = {.channels = 6, .scale = 50.0}, .num_classes = 3}, rng);
        const Eigen::Index n = 7;
        const std::vector<int> labels = {0, 2, 3, 2, 1, 3, 2};  // 3 = ∅; class 2 three times (the gradient sums)
        const Matrix<double> x = normal(2, n, rng), w = normal(2, n, rng);
        Row<double> t(n);
        for (Eigen::Index j = 0; j < n; ++j) t(j) = fmd::uniform01(rng);
        auto loss = [&] {
            Matrix<double> out(2, n);
            net.forward(x, t, labels, out);
            return (w.array() * out.array()).sum();
        };
        Matrix<double> out(2, n), grad_x(2, n);
        net.forward(x, t, labels, out);
        net.gradients().setConstant(7.0);  // overwritten, not accumulated
        net.backward(w, grad_x);
        const Vector<double> g = net.gradients();

        auto p = net.parameters();
        Vector<double> fd(p.size());
        constexpr double h = 1e-6;
        for (Eigen::Index i = 0; i < p.size(); ++i) {
            const double keep = p(i);
            p(i) = keep + h;
            const double lp = loss();
            p(i) = keep - h;
            const double lm = loss();
            p(i) = keep;
            fd(i) = (lp - lm) / (2 * h);
        }
        CHECK(rel_err(g, fd) < 1e-6);
        const Eigen::Index off = net.class_table_offset(), w10 = 10;
        const Vector<double> gt = g.segment(off, 4 * w10), ft = fd.segment(off, 4 * w10);
        CHECK(rel_err(gt, ft) < 1e-6);
        for (int y = 0; y < 4; ++y) CHECK(ft.segment(y * w10, w10).cwiseAbs().maxCoeff() > 1e-4);  // every used row gets a gradient
        // The unlabelled forward is the ∅ forward, gradient included: only the ∅ column is touched.
        net.forward(x, t, out);
        net.backward(w);
        const Vector<double> g_null = net.gradients();
        const std::vector<int> all_null(static_cast<std::size_t>(n), 3);
        Matrix<double> out2(2, n);
        net.forward(x, t, all_null, out2);
        CHECK(out2 == out);
        net.backward(w);
        CHECK(net.gradients() == g_null);
        CHECK(g_null.segment(off, 3 * w10).cwiseAbs().maxCoeff() == 0.0);
        CHECK(g_null.segment(off + 3 * w10, w10).cwiseAbs().maxCoeff() > 1e-4);
    }
}

TEST_CASE("Conditional MLP: sampling call with labels equals the training pass; labels change the field", "[nn]") {
    fmd::Rng rng(9);
    MLP<double> net({.dim = 3, .width = 16, .depth = 2, .activation = Activation::silu,
                     .time = {.kind = Embedding::fourier, .sigma = 2.0}, .num_classes = 5}, rng);
    const Matrix<double> x = normal(3, 6, rng);
    const std::vector<int> labels = {4, 0, 5, 1, 1, 3};
    Matrix<double> a(3, 6), b(3, 6);
    for (const double t : {0.0, 0.4, 1.0}) {
        net(x, t, labels, a);
        net.forward(x, Row<double>::Constant(6, t), labels, b);
        CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-12 * std::max(1.0, b.cwiseAbs().maxCoeff()));
        net(x, t, b);  // unlabelled = ∅: column 2 (label 5 = ∅) agrees, the others not
        CHECK((a.col(2) - b.col(2)).cwiseAbs().maxCoeff() <= 1e-12);
        CHECK((a.col(0) - b.col(0)).cwiseAbs().maxCoeff() > 1e-3);
    }
    // Guided with w = 1 through the MLP is the labelled call.
    fmd::Guided<double, MLP<double>> g(net, net.null_label(), 1.0, labels);
    net(x, 0.3, labels, a);
    g(x, 0.3, b);
    CHECK(a == b);
    g.set_weight(2.0);  // and with guidance: ∅ + 2 (y − ∅), from one batched call
    g(x, 0.3, b);
    Matrix<double> u_null(3, 6);
    net(x, 0.3, u_null);
    CHECK((b - (u_null + 2.0 * (a - u_null))).cwiseAbs().maxCoeff() <= 1e-12);
}

TEST_CASE("MLP::describe and Fourier frequencies restored from the configuration", "[nn]") {
    const MLPConfig c{.dim = 2, .width = 16, .depth = 2, .time = {.kind = Embedding::fourier, .sigma = 3.0, .seed = 5}, .num_classes = 10};
    fmd::Rng r1(1), r2(2);
    const MLP<float> a(c, r1), b(c, r2);  // different weight generators
    CHECK(a.time_embedding().omega() == b.time_embedding().omega());
    CHECK(a.describe() == b.describe());
    CHECK(a.describe() == "nn::MLP(dim=2, out_dim=2, width=16, depth=2, activation=relu, time=fourier(channels=16, sigma=3, seed=5), num_classes=10)");
    MLPConfig d = c;
    d.time.seed = 6;
    const MLP<float> e(d, r1);
    CHECK((a.time_embedding().omega() - e.time_embedding().omega()).cwiseAbs().maxCoeff() > 1e-3);
    CHECK(a.describe() != e.describe());
    // Every architectural field shows in the description.
    std::vector<MLPConfig> variants(8, c);
    variants[0].dim = 3;
    variants[1].out_dim = 3;
    variants[2].width = 17;
    variants[3].depth = 3;
    variants[4].activation = Activation::silu;
    variants[5].time.sigma = 3.5;
    variants[6].num_classes = 0;
    variants[7].time = {.channels = 16};
    for (const auto& v : variants) CHECK(MLP<float>(v).describe() != a.describe());
    CHECK(MLP<double>({.width = 8, .time = {.scale = 100.0}}).describe() ==
          "nn::MLP(dim=2, out_dim=2, width=8, depth=5, activation=relu, time=sinusoidal(channels=8, scale=100, max_period=10000), num_classes=0)");
}

TEST_CASE("Conditional MLP: bad labels throw fmd::error naming 'labels'", "[nn]") {
    MLP<double> plain({.dim = 2, .width = 8, .depth = 1});
    MLP<double> cond({.dim = 2, .width = 8, .depth = 1, .num_classes = 2});
    const Matrix<double> x = Matrix<double>::Zero(2, 3);
    Matrix<double> out(2, 3);
    const Row<double> t = Row<double>::Constant(3, 0.5);
    const std::vector<int> ok = {0, 1, 2}, too_big = {0, 3, 1}, negative = {0, -1, 1}, short_ = {0, 1};
    CHECK_THROWS_WITH(plain(x, 0.5, ok, out), Contains("'labels'") && Contains("unconditional"));
    CHECK_THROWS_WITH(plain.forward(x, t, ok, out), Contains("'labels'"));
    CHECK_NOTHROW(cond(x, 0.5, ok, out));
    CHECK_THROWS_WITH(cond(x, 0.5, too_big, out), Contains("'labels'") && Contains("got 3"));
    CHECK_THROWS_WITH(cond.forward(x, t, negative, out), Contains("'labels'"));
    CHECK_THROWS_WITH(cond(x, 0.5, short_, out), Contains("'labels'") && Contains("one label per column"));
    CHECK_THROWS_WITH(MLP<double>({.width = 8, .num_classes = -1}), Contains("'num_classes'"));
}

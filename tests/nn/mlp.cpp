// nn::MLP and its layers: gradients against central finite differences, the shared-time
// sampling path against the training path, the seed notebook's architecture against PyTorch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/nn/nn.hpp>

#include "reference.hpp"
#include "support.hpp"

using fmd::Matrix;
using fmd::Row;
using fmd::Vector;
using fmd::nn::Activation;
using fmd::nn::Embedding;
using fmd::nn::MLP;
using fmd::nn::MLPConfig;
using Catch::Matchers::Contains;

namespace {

constexpr double fd_step = 1e-6;

using fmd_test::normal;
using fmd_test::rel_err;  // ‖a − b‖∞ / ‖b‖∞, the relative error of every gradient check

// L(θ) = Σ w ⊙ net.forward(x, t) with θ = the net's parameters.
double mlp_loss(MLP<double>& net, const Matrix<double>& x, const Row<double>& t, const Matrix<double>& w) {
    Matrix<double> out(net.output_dim(), x.cols());
    net.forward(x, t, out);
    return (w.array() * out.array()).sum();
}

// The seed notebook's architecture with deterministic PyTorch-like parameters, as written by
// tests/fixtures/make_mlp_reference.py: h_i = (7919 i² + 13 i) mod 1000003,
// p_i = (2 h_i / 1000003 − 1)/√fan_in.
template <class S>
void fill_reference_parameters(MLP<S>& net) {
    auto p = net.parameters();
    for (Eigen::Index l = 0; l < net.layer_count(); ++l) {
        const auto layer = net.layer(l);
        const Eigen::Index begin = net.layer_offset(l);
        const Eigen::Index end = begin + fmd::nn::Linear<S>::size(layer.out_features(), layer.in_features());
        const double inv_sqrt_fan_in = 1.0 / std::sqrt(static_cast<double>(layer.in_features()));
        for (Eigen::Index i = begin; i < end; ++i) {
            const std::int64_t ii = i;
            const std::int64_t h = (7919 * ii * ii + 13 * ii) % 1000003;
            p(i) = static_cast<S>((2.0 * static_cast<double>(h) / 1000003.0 - 1.0) * inv_sqrt_fan_in);
        }
    }
}

}  // namespace

TEST_CASE("MLP: the seed notebook's configuration has 1,578,498 parameters", "[nn]") {
    const MLPConfig seed{.dim = 2, .width = 512, .depth = 5, .activation = Activation::relu,
                         .time = {.kind = Embedding::sinusoidal, .scale = 10000.0}};
    CHECK(MLP<float>::parameter_count(seed) == 1578498);
    const MLP<float> net(seed);
    CHECK(net.parameter_count() == 1578498);
    CHECK(net.parameters().size() == 1578498);
    CHECK(net.gradients().size() == 1578498);
    // The description resolves defaults and compares with ==.
    CHECK(net.config().out_dim == 2);
    CHECK(net.config().time.channels == 512);
    MLPConfig resolved = seed;
    resolved.out_dim = 2;
    resolved.time.channels = 512;
    CHECK(net.config() == resolved);
    CHECK_FALSE(net.config() == seed);
    // Buffer layout: in (512x2 + 512), time (512x512 + 512), 5 hidden, out (2x512 + 2).
    CHECK(net.layer_count() == 8);
    CHECK(net.layer_offset(MLP<float>::time_layer) == 1536);
    CHECK(net.layer_offset(MLP<float>::hidden_layer(1)) == 1536 + 262656);
    CHECK(net.layer_offset(net.output_layer()) == 1578498 - 1026);
    // depth, width, channels and out_dim all enter the count.
    CHECK(MLP<double>::parameter_count({.dim = 3, .out_dim = 1, .width = 4, .depth = 2, .time = {.channels = 6}}) ==
          (4 * 3 + 4) + (4 * 6 + 4) + 2 * (4 * 4 + 4) + (1 * 4 + 1));
}

TEST_CASE("MLP: PyTorch-style initialization U(-1/sqrt(fan_in), 1/sqrt(fan_in)), reproducible", "[nn]") {
    fmd::Rng rng(7);
    MLP<double> net({.dim = 2, .width = 64, .depth = 2}, rng);
    for (Eigen::Index l = 0; l < net.layer_count(); ++l) {
        auto layer = net.layer(l);
        const double bound = 1.0 / std::sqrt(static_cast<double>(layer.in_features()));
        const double wmax = layer.weight.cwiseAbs().maxCoeff();
        CHECK(wmax <= bound);
        CHECK(layer.bias.cwiseAbs().maxCoeff() <= bound);
        if (layer.weight.size() >= 1000) {
            const double count = static_cast<double>(layer.weight.size());
            CHECK(wmax > 0.99 * bound);  // the whole range is used
            // mean 0 and variance b²/3 of U(−b, b), within 4 standard errors
            CHECK(std::abs(layer.weight.mean()) < 4.0 * bound / std::sqrt(3.0 * count));
            CHECK(std::abs(layer.weight.array().square().mean() - bound * bound / 3) < 4.0 * 0.3 * bound * bound / std::sqrt(count));
        }
    }
    fmd::Rng rng2(7);
    const MLP<double> same({.dim = 2, .width = 64, .depth = 2}, rng2);
    CHECK(same.parameters() == net.parameters());
    const MLP<double> other({.dim = 2, .width = 64, .depth = 2}, std::uint64_t{8});
    CHECK((other.parameters() - net.parameters()).cwiseAbs().maxCoeff() > 0.01);
}

TEST_CASE("nn::Linear: backward against central finite differences", "[nn]") {
    fmd::Rng rng(11);
    const Eigen::Index in = 4, out = 3, n = 5;
    Vector<double> buf(fmd::nn::Linear<double>::size(out, in)), gbuf(buf.size());
    fmd::fill_normal(buf, rng);
    fmd::nn::Linear<double> lin(buf.data(), out, in), grad(gbuf.data(), out, in);
    const Matrix<double> x = normal(in, n, rng), w = normal(out, n, rng);
    auto loss = [&](const Matrix<double>& xx) {
        Matrix<double> y(out, n);
        lin.forward(xx, y);
        return (w.array() * y.array()).sum();
    };
    // y = W x + b exactly
    Matrix<double> y(out, n);
    lin.forward(x, y);
    CHECK(rel_err(y, (lin.weight * x).colwise() + lin.bias) < 1e-15);

    fmd::nn::Linear<double>::backward(x, w, grad);
    Matrix<double> dx(in, n);
    lin.backward_input(w, dx);

    Vector<double> fd(buf.size());
    for (Eigen::Index i = 0; i < buf.size(); ++i) {
        const double keep = buf(i);
        buf(i) = keep + fd_step;
        const double lp = loss(x);
        buf(i) = keep - fd_step;
        const double lm = loss(x);
        buf(i) = keep;
        fd(i) = (lp - lm) / (2 * fd_step);
    }
    CHECK(rel_err(gbuf, fd) < 1e-6);
    Matrix<double> fdx(in, n), xp = x;
    for (Eigen::Index i = 0; i < x.size(); ++i) {
        xp(i) = x(i) + fd_step;
        const double lp = loss(xp);
        xp(i) = x(i) - fd_step;
        const double lm = loss(xp);
        xp(i) = x(i);
        fdx(i) = (lp - lm) / (2 * fd_step);
    }
    CHECK(rel_err(dx, fdx) < 1e-6);
}

TEST_CASE("nn activations: fused bias + ReLU / SiLU backward against finite differences", "[nn]") {
    fmd::Rng rng(12);
    const Eigen::Index rows = 6, n = 7;
    Matrix<double> z = normal(rows, n, rng);
    // Keep ReLU away from its kink: |z + b| >= 0.1 while FD moves z by 1e-6.
    Vector<double> b = normal(rows, 1, rng);
    for (Eigen::Index i = 0; i < z.size(); ++i) {
        const double pre = z(i) + b(i % rows);
        if (std::abs(pre) < 0.1) z(i) += pre >= 0 ? 0.2 : -0.2;
    }
    const Matrix<double> w = normal(rows, n, rng);

    for (const Activation act : {Activation::relu, Activation::silu}) {
        INFO("activation " << static_cast<int>(act));
        auto apply = [&](const Matrix<double>& zz, Matrix<double>& a, Matrix<double>& s) {
            a = zz;
            if (act == Activation::relu)
                fmd::nn::relu_forward<double>(b, a);
            else
                fmd::nn::silu_forward<double>(b, a, s);
        };
        Matrix<double> a(rows, n), s(rows, n);
        apply(z, a, s);
        // values against the definitions
        const Matrix<double> pre = z.colwise() + b;
        const Matrix<double> expect =
            act == Activation::relu ? Matrix<double>(pre.cwiseMax(0.0)) : Matrix<double>(pre.array() / (1.0 + (-pre.array()).exp()));
        CHECK(rel_err(a, expect) < 1e-15);
        if (act == Activation::silu) {
            Matrix<double> a2 = z;
            fmd::nn::silu_forward<double>(b, a2);  // the inference variant agrees
            CHECK(rel_err(a2, a) < 1e-15);
        }

        Matrix<double> g = w;  // ∂L/∂a for L = Σ w ⊙ a
        if (act == Activation::relu)
            fmd::nn::relu_backward<double>(a, g);
        else
            fmd::nn::silu_backward<double>(a, s, g);

        Matrix<double> fd(rows, n), zp = z, ap(rows, n), sp(rows, n);
        for (Eigen::Index i = 0; i < z.size(); ++i) {
            zp(i) = z(i) + fd_step;
            apply(zp, ap, sp);
            const double lp = (w.array() * ap.array()).sum();
            zp(i) = z(i) - fd_step;
            apply(zp, ap, sp);
            const double lm = (w.array() * ap.array()).sum();
            zp(i) = z(i);
            fd(i) = (lp - lm) / (2 * fd_step);
        }
        CHECK(rel_err(g, fd) < 1e-6);
        if (act == Activation::relu) CHECK((g.array() == 0).count() > 0);  // some units are off
    }
}

TEST_CASE("nn::TimeEmbedding: sinusoidal and random Fourier features", "[nn]") {
    using fmd::nn::TimeEmbedding;
    SECTION("sinusoidal: the notebook's frequency ladder, [sin..., cos...]") {
        const auto e = TimeEmbedding::sinusoidal(512, 10000.0, 10000.0);
        REQUIRE(e.half() == 256);
        CHECK(e.omega()(0) == Approx(10000.0));
        CHECK(e.omega()(255) == Approx(1.0));  // 10000 · 10000^(−1)
        CHECK(e.omega()(100) == Approx(10000.0 * std::pow(10000.0, -100.0 / 255.0)).epsilon(1e-13));
        Vector<double> v(512);
        e.embed<double>(0.137, v);
        for (const int k : {0, 17, 255}) {
            const double a = 0.137 * 10000.0 * std::exp(-k * std::log(10000.0) / 255.0);
            CHECK(v(k) == Approx(std::sin(a)).margin(1e-12));
            CHECK(v(256 + k) == Approx(std::cos(a)).margin(1e-12));
        }
        // batch form agrees with the single-time form column by column
        const Row<double> t = (Row<double>(3) << 0.0, 0.5, 1.0).finished();
        Matrix<double> E(512, 3);
        e.embed<double>(t, E);
        for (Eigen::Index j = 0; j < 3; ++j) {
            e.embed<double>(t(j), v);
            CHECK(E.col(j) == v);
        }
        CHECK(E.col(0).head(256).isZero());
        CHECK(E.col(0).tail(256).isOnes());
        // float output: angles formed in double, so t·10000 loses nothing to float rounding
        // (float: reduced in double, then vectorized float sin/cos; float t·10000 alone would be off by ~1e-3)
        Row<float> tf(200);
        for (Eigen::Index j = 0; j < 200; ++j) tf(j) = static_cast<float>(j) / 199.0f;
        Matrix<float> Ef(512, 200);
        e.embed<float>(tf, Ef);
        double worst = 0;
        for (Eigen::Index j = 0; j < 200; ++j) {
            e.embed<double>(static_cast<double>(tf(j)), v);
            worst = std::max(worst, (Ef.col(j).cast<double>() - v).cwiseAbs().maxCoeff());
        }
        CHECK(worst < 5e-7);
        Vector<float> vf(512);
        e.embed<float>(tf(77), vf);
        CHECK(vf == Ef.col(77));
    }
    SECTION("odd channel count pads one zero (as the notebook's F.pad)") {
        const auto e = TimeEmbedding::sinusoidal(7, 100.0);
        Vector<double> v(7);
        e.embed<double>(0.3, v);
        CHECK(e.half() == 3);
        CHECK(v(6) == 0.0);
        CHECK(v(3) == Approx(std::cos(0.3 * 100.0)));
    }
    SECTION("fourier: f ~ N(0, sigma²), [sin 2πft, cos 2πft], reproducible") {
        fmd::Rng rng(3), rng2(3);
        const auto e = TimeEmbedding::fourier(4000, 2.5, rng);
        const auto e2 = TimeEmbedding::fourier(4000, 2.5, rng2);
        CHECK(e.omega() == e2.omega());
        const Vector<double> f = e.omega() / (2.0 * std::numbers::pi);
        const double mean = f.mean(), sd = std::sqrt((f.array() - mean).square().mean());
        CHECK(std::abs(mean) < 0.15);
        CHECK(sd == Approx(2.5).epsilon(0.06));
        Vector<double> v(4000);
        e.embed<double>(0.7, v);
        CHECK(v(5) == Approx(std::sin(2.0 * std::numbers::pi * f(5) * 0.7)).margin(1e-12));
        CHECK(v(2005) == Approx(std::cos(2.0 * std::numbers::pi * f(5) * 0.7)).margin(1e-12));
    }
    SECTION("bad arguments") {
        fmd::Rng rng(1);
        CHECK_THROWS_WITH(TimeEmbedding::sinusoidal(1), Contains("'channels'"));
        CHECK_THROWS_WITH(TimeEmbedding::sinusoidal(8, -1.0), Contains("'scale'"));
        CHECK_THROWS_WITH(TimeEmbedding::fourier(8, 0.0, rng), Contains("'sigma'"));
        auto e = TimeEmbedding::sinusoidal(8);
        CHECK_THROWS_WITH(e.set_omega(Vector<double>::Ones(3)), Contains("'omega'"));
    }
}

TEST_CASE("MLP: backward against central finite differences (every layer, both embeddings)", "[nn]") {
    struct Case {
        const char* name;
        MLPConfig config;
    };
    const std::vector<Case> cases = {
        {"relu + sinusoidal", {.dim = 3, .out_dim = 2, .width = 12, .depth = 3, .activation = Activation::relu,
                               .time = {.kind = Embedding::sinusoidal, .channels = 10, .scale = 100.0}}},
        {"silu + fourier (odd channels)", {.dim = 2, .width = 16, .depth = 2, .activation = Activation::silu,
                                           .time = {.kind = Embedding::fourier, .channels = 9, .sigma = 2.0}}},
        {"depth 0", {.dim = 2, .out_dim = 3, .width = 8, .depth = 0, .time = {.channels = 6, .scale = 10.0}}},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        fmd::Rng rng(2024);
        MLP<double> net(c.config, rng);
        const Eigen::Index n = 5;
        const Matrix<double> x = normal(net.input_dim(), n, rng);
        Row<double> t(n);
        for (Eigen::Index j = 0; j < n; ++j) t(j) = fmd::uniform01(rng);
        const Matrix<double> w = normal(net.output_dim(), n, rng);

        Matrix<double> out(net.output_dim(), n), grad_x(net.input_dim(), n);
        net.forward(x, t, out);
        net.gradients().setConstant(123.0);  // backward must overwrite, not accumulate
        net.backward(w, grad_x);
        const Vector<double> g = net.gradients();

        auto p = net.parameters();
        Vector<double> fd(p.size());
        for (Eigen::Index i = 0; i < p.size(); ++i) {
            const double keep = p(i);
            p(i) = keep + fd_step;
            const double lp = mlp_loss(net, x, t, w);
            p(i) = keep - fd_step;
            const double lm = mlp_loss(net, x, t, w);
            p(i) = keep;
            fd(i) = (lp - lm) / (2 * fd_step);
        }
        for (Eigen::Index l = 0; l < net.layer_count(); ++l) {
            INFO("layer " << l);
            const auto layer = net.layer(l);
            const Eigen::Index off = net.layer_offset(l), wsize = layer.weight.size(), bsize = layer.bias.size();
            CHECK(rel_err(g.segment(off, wsize), fd.segment(off, wsize)) < 1e-6);
            CHECK(rel_err(g.segment(off + wsize, bsize), fd.segment(off + wsize, bsize)) < 1e-6);
            CHECK(fd.segment(off, wsize).cwiseAbs().maxCoeff() > 1e-3);  // the check is not vacuous
        }
        Matrix<double> fdx(x.rows(), n), xp = x;
        for (Eigen::Index i = 0; i < x.size(); ++i) {
            xp(i) = x(i) + fd_step;
            const double lp = mlp_loss(net, xp, t, w);
            xp(i) = x(i) - fd_step;
            const double lm = mlp_loss(net, xp, t, w);
            xp(i) = x(i);
            fdx(i) = (lp - lm) / (2 * fd_step);
        }
        CHECK(rel_err(grad_x, fdx) < 1e-6);
    }
}

TEST_CASE("MLP: the sampling call at one time equals the training pass at t·1ᵀ", "[nn]") {
    for (const Activation act : {Activation::relu, Activation::silu})
        for (const Embedding emb : {Embedding::sinusoidal, Embedding::fourier}) {
            INFO("activation " << static_cast<int>(act) << " embedding " << static_cast<int>(emb));
            fmd::Rng rng(5);
            MLP<double> net({.dim = 3, .width = 24, .depth = 3, .activation = act, .time = {.kind = emb, .sigma = 3.0}}, rng);
            const Matrix<double> x = normal(3, 9, rng);
            Matrix<double> a(3, 9), b(3, 9);
            for (const double t : {0.0, 0.31, 1.0}) {
                net(x, t, a);
                net.forward(x, Row<double>::Constant(9, t), b);
                CHECK((a - b).cwiseAbs().maxCoeff() <= 1e-12 * std::max(1.0, b.cwiseAbs().maxCoeff()));
            }
            // different times give different fields
            net(x, 0.2, a);
            net(x, 0.8, b);
            CHECK((a - b).cwiseAbs().maxCoeff() > 1e-3);
        }
}

TEST_CASE("MLP: workspaces follow the batch size; sampling between forward and backward is harmless", "[nn]") {
    fmd::Rng rng(9);
    MLP<double> net({.dim = 2, .width = 16, .depth = 2, .activation = Activation::silu}, rng);
    const Matrix<double> x = normal(2, 6, rng), w = normal(2, 6, rng);
    const Row<double> t = (Row<double>(6) << 0.1, 0.2, 0.3, 0.4, 0.5, 0.6).finished();
    Matrix<double> out(2, 6);
    net.forward(x, t, out);
    net.backward(w);
    const Vector<double> g_ref = net.gradients();
    const Matrix<double> out_ref = out;

    // A different batch size in between, then back.
    Matrix<double> small(2, 3);
    net.forward(x.leftCols(3), t.head(3), small);
    CHECK((small - out_ref.leftCols(3)).cwiseAbs().maxCoeff() < 1e-14);
    net.forward(x, t, out);
    Matrix<double> sampled(2, 4);
    net(x.rightCols(4), 0.5, sampled);  // sampling at another batch size
    net.backward(w);
    CHECK(out == out_ref);
    CHECK(net.gradients() == g_ref);
    // x and out may be the same matrix
    Matrix<double> inplace = x;
    net.forward(inplace, t, inplace);
    CHECK(inplace == out_ref);
    // copies are independent (layer views are recomputed from the copy's own buffers)
    MLP<double> copy = net;
    Matrix<double> from_copy(2, 6);
    copy(x, 0.5, from_copy);
    net(x, 0.5, out);
    CHECK(from_copy == out);
    copy.parameters().setZero();
    copy(x, 0.5, from_copy);
    CHECK(from_copy.isZero());
    sampled.resize(2, 6);
    net(x, 0.5, sampled);
    CHECK(sampled == out);
}

TEST_CASE("MLP: bad inputs throw fmd::error naming the argument", "[nn]") {
    MLP<double> net({.dim = 2, .width = 8, .depth = 1});
    Matrix<double> x(2, 4), out(2, 4), bad(3, 4);
    x.setOnes();
    const Row<double> t = Row<double>::Constant(4, 0.5);
    CHECK_THROWS_WITH(net.backward(out), Contains("'grad_out'"));  // no forward yet
    CHECK_THROWS_AS(net.forward(bad, t, out), fmd::error);
    CHECK_THROWS_WITH(net.forward(bad, t, out), Contains("'x'"));
    CHECK_THROWS_WITH(net.forward(x, t, bad), Contains("'out'"));
    CHECK_THROWS_WITH(net.forward(x, Row<double>::Constant(3, 0.5), out), Contains("'t'"));
    CHECK_THROWS_WITH(net.forward(x, Row<double>::Constant(4, NAN), out), Contains("'t'"));
    CHECK_THROWS_WITH(net(x, INFINITY, out), Contains("'t'"));
    Matrix<double> empty(2, 0);
    CHECK_THROWS_WITH(net(empty, 0.5, empty), Contains("'x'"));
    net.forward(x, t, out);
    CHECK_THROWS_WITH(net.backward(Matrix<double>(2, 3)), Contains("'grad_out'"));
    Matrix<double> gx(3, 4);
    CHECK_THROWS_WITH(net.backward(out, gx), Contains("'grad_x'"));
    CHECK_THROWS_WITH(net.layer(4), Contains("'i'"));  // depth 1: layers 0 … 3
    CHECK_THROWS_WITH(net.gradient(-1), Contains("'i'"));
    CHECK_THROWS_WITH(MLP<float>({.dim = 0}), Contains("'dim'"));
    CHECK_THROWS_WITH(MLP<float>({.width = 0}), Contains("'width'"));
    CHECK_THROWS_WITH(MLP<float>({.depth = -1}), Contains("'depth'"));
    CHECK_THROWS_WITH(MLP<float>({.width = 8, .time = {.channels = 1}}), Contains("'time.channels'"));
    CHECK_THROWS_WITH(MLP<float>({.width = 8, .time = {.scale = 0.0}}), Contains("'time.scale'"));
    CHECK_THROWS_WITH(MLP<float>({.width = 8, .time = {.kind = Embedding::fourier, .sigma = -1.0}}), Contains("'time.sigma'"));
}

TEST_CASE("MLP: seed notebook model matches PyTorch on fixed parameters", "[nn]") {
    const auto ref = fmd_test::read_reference();
    REQUIRE(ref.count("mlp_out") == 1);
    const Matrix<double>& x = ref.at("mlp_x");
    const Row<double> t = ref.at("mlp_t");
    const Matrix<double>& expect = ref.at("mlp_out");
    const double ts = ref.at("mlp_scalar_t")(0, 0);
    const Matrix<double>& expect_s = ref.at("mlp_out_scalar_t");
    // The reference is not degenerate: outputs move with x and t well beyond the tolerance.
    CHECK((expect.col(0) - expect.col(1)).norm() > 1e-3);
    CHECK((expect.col(2) - expect_s.col(2)).norm() > 1e-3);

    const MLPConfig seed{.dim = 2, .width = 512, .depth = 5};
    REQUIRE(MLP<double>::parameter_count(seed) == static_cast<Eigen::Index>(ref.at("mlp_parameter_count")(0, 0)));
    {
        MLP<double> net(seed);
        fill_reference_parameters(net);
        Matrix<double> out(2, 4);
        net.forward(x, t, out);
        CHECK((out - expect).cwiseAbs().maxCoeff() < 1e-10);
        net(x, ts, out);
        CHECK((out - expect_s).cwiseAbs().maxCoeff() < 1e-10);
    }
    {
        MLP<float> net(seed);
        fill_reference_parameters(net);
        const Matrix<float> xf = x.cast<float>();
        Matrix<float> out(2, 4);
        net.forward(xf, t.cast<float>(), out);
        CHECK((out.cast<double>() - expect).cwiseAbs().maxCoeff() < 1e-5);
        net(xf, ts, out);
        CHECK((out.cast<double>() - expect_s).cwiseAbs().maxCoeff() < 1e-5);
    }
}

static_assert(fmd::VectorField<MLP<float>, float>);
static_assert(fmd::nn::Network<MLP<double>, double>);

// Optimizers, clipping and LR schedules: hand-written update formulas and torch.optim values
// (tests/fixtures/mlp_reference.txt), state round trips, argument checks, and a short training run.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/nn/nn.hpp>

#include "reference.hpp"
#include "support.hpp"

using fmd::Matrix;
using fmd::Row;
using fmd::Vector;
using Catch::Matchers::Contains;
using fmd_test::max_abs;

namespace {

const Vector<double> p0 = (Vector<double>(5) << 0.5, -1.0, 2.0, 0.0, -0.25).finished();
const Matrix<double> grads = (Matrix<double>(3, 5) << 0.1, -0.2, 0.3, 0.05, -1.0,  //
                              0.4, 0.1, -0.5, 0.0, 0.2,                              //
                              -0.3, 0.25, 0.1, -0.05, 0.6)
                                 .finished();

// Reference Adam / AdamW written element by element from the formulas of torch.optim:
//   t ← t + 1
//   AdamW: p ← p − lr·wd·p            Adam (L2): g ← g + wd·p
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   m̂ = m / (1 − β1ᵗ),  v̂ = v / (1 − β2ᵗ)   (torch folds these into step size and denominator)
//   p ← p − lr·m / (√v / √(1 − β2ᵗ) + eps) / (1 − β1ᵗ)
Matrix<double> adam_reference(bool decoupled, double lr, double b1, double b2, double eps, double wd) {
    Vector<double> p = p0, m = Vector<double>::Zero(5), v = Vector<double>::Zero(5);
    Matrix<double> rows(3, 5);
    for (int t = 1; t <= 3; ++t) {
        for (int i = 0; i < 5; ++i) {
            double g = grads(t - 1, i);
            if (decoupled)
                p(i) -= lr * wd * p(i);
            else
                g += wd * p(i);
            m(i) = b1 * m(i) + (1 - b1) * g;
            v(i) = b2 * v(i) + (1 - b2) * g * g;
            const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
            p(i) -= (lr / bc1) * m(i) / (std::sqrt(v(i)) / std::sqrt(bc2) + eps);
        }
        rows.row(t - 1) = p.transpose();
    }
    return rows;
}

// torch.optim.SGD with momentum μ, dampening τ, weight decay wd:
//   d = g + wd·p;  buf = d on the first step, else buf = μ·buf + (1 − τ)·d
//   p ← p − lr·(nesterov ? d + μ·buf : buf)
Matrix<double> sgd_reference(double lr, double mu, double tau, double wd, bool nesterov) {
    Vector<double> p = p0, buf = Vector<double>::Zero(5);
    Matrix<double> rows(3, 5);
    for (int t = 1; t <= 3; ++t) {
        for (int i = 0; i < 5; ++i) {
            const double d = grads(t - 1, i) + wd * p(i);
            buf(i) = t == 1 ? d : mu * buf(i) + (1 - tau) * d;
            p(i) -= lr * (nesterov ? d + mu * buf(i) : buf(i));
        }
        rows.row(t - 1) = p.transpose();
    }
    return rows;
}

template <class Opt>
Matrix<double> run3(Opt& opt) {
    Vector<double> p = p0;
    Matrix<double> rows(3, 5);
    for (int t = 0; t < 3; ++t) {
        opt.step(p, grads.row(t).transpose());
        rows.row(t) = p.transpose();
    }
    return rows;
}

}  // namespace

TEST_CASE("AdamW / Adam / SGD: three steps against hand-written formulas and torch.optim", "[nn]") {
    const auto ref = fmd_test::read_reference();
    REQUIRE((ref.at("optim_p0").transpose() - p0).isZero(0));
    REQUIRE((ref.at("optim_grads") - grads).isZero(0));

    SECTION("AdamW lr 0.1, wd 0.1") {
        fmd::nn::AdamW<double> opt(5, {.lr = 0.1, .weight_decay = 0.1});
        const Matrix<double> got = run3(opt);
        const Matrix<double> hand = adam_reference(true, 0.1, 0.9, 0.999, 1e-8, 0.1);
        CHECK(max_abs(got - hand) < 1e-14);
        CHECK(max_abs(got - ref.at("adamw_lr0.1_wd0.1")) < 1e-13);
        CHECK(opt.steps() == 3);
        // the decay matters: without it the trajectory differs
        CHECK(max_abs(hand - adam_reference(true, 0.1, 0.9, 0.999, 1e-8, 0.0)) > 1e-3);
    }
    SECTION("AdamW defaults are torch's (lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0.01)") {
        fmd::nn::AdamW<double> opt(5);
        CHECK(opt.lr() == 1e-3);
        CHECK(opt.beta1() == 0.9);
        CHECK(opt.beta2() == 0.999);
        CHECK(opt.eps() == 1e-8);
        CHECK(opt.weight_decay() == 0.01);
        CHECK(max_abs(run3(opt) - ref.at("adamw_defaults")) < 1e-14);
    }
    SECTION("Adam lr 0.05 with L2 weight decay 0.1; default wd 0") {
        fmd::nn::Adam<double> opt(5, {.lr = 0.05, .weight_decay = 0.1});
        const Matrix<double> got = run3(opt);
        CHECK(max_abs(got - adam_reference(false, 0.05, 0.9, 0.999, 1e-8, 0.1)) < 1e-14);
        CHECK(max_abs(got - ref.at("adam_lr0.05_wd0.1")) < 1e-13);
        CHECK(fmd::nn::Adam<double>(5).weight_decay() == 0.0);
        fmd::nn::Adam<double> plain(5, {.lr = 0.05});
        CHECK(max_abs(run3(plain) - adam_reference(false, 0.05, 0.9, 0.999, 1e-8, 0.0)) < 1e-14);
    }
    SECTION("SGD momentum 0.9, dampening 0.1, wd 0.01") {
        fmd::nn::SGD<double> opt(5, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
        const Matrix<double> got = run3(opt);
        CHECK(max_abs(got - sgd_reference(0.1, 0.9, 0.1, 0.01, false)) < 1e-15);
        CHECK(max_abs(got - ref.at("sgd_lr0.1_m0.9_damp0.1_wd0.01")) < 1e-14);
    }
    SECTION("SGD Nesterov") {
        fmd::nn::SGD<double> opt(5, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
        const Matrix<double> got = run3(opt);
        CHECK(max_abs(got - sgd_reference(0.1, 0.9, 0.0, 0.01, true)) < 1e-15);
        CHECK(max_abs(got - ref.at("sgd_lr0.1_m0.9_nesterov_wd0.01")) < 1e-14);
    }
    SECTION("plain SGD: p ← p − lr·g") {
        fmd::nn::SGD<double> opt(5, {.lr = 0.5});
        Vector<double> p = p0;
        opt.step(p, grads.row(0).transpose());
        CHECK(max_abs(p - (p0 - 0.5 * grads.row(0).transpose())) < 1e-16);
        CHECK(opt.state().buffers.empty());
    }
}

TEST_CASE("Optimizers: chunked updates on long buffers, float, set_lr, state round trip", "[nn]") {
    const Eigen::Index n = 5000;  // crosses the internal chunk size
    fmd::Rng rng(4);
    Vector<double> p(n), g1(n), g2(n);
    fmd::fill_normal(p, rng);
    fmd::fill_normal(g1, rng);
    fmd::fill_normal(g2, rng);

    SECTION("AdamW elementwise on 5000 entries") {
        fmd::nn::AdamW<double> opt(n, {.lr = 0.01, .weight_decay = 0.05});
        Vector<double> q = p;
        opt.step(q, g1);
        // first step: m̂ = g, v̂ = g² ⇒ p ← p(1 − lr·wd) − lr·g/(|g| + eps)
        const Vector<double> expect = p * (1 - 0.01 * 0.05) - 0.01 * (g1.array() / (g1.array().abs() + 1e-8)).matrix();
        CHECK(max_abs(q - expect) < 1e-15);
    }
    SECTION("float follows double") {
        fmd::nn::AdamW<double> od(n, {.lr = 0.01});
        fmd::nn::AdamW<float> of(n, {.lr = 0.01});
        Vector<double> qd = p;
        Vector<float> qf = p.cast<float>();
        for (const Vector<double>* g : {&g1, &g2, &g1}) {
            od.step(qd, *g);
            of.step(qf, g->cast<float>());
        }
        CHECK(max_abs(qf.cast<double>() - qd) < 1e-5);
    }
    SECTION("set_lr changes the next step; lr 0 leaves Adam's parameters alone") {
        fmd::nn::Adam<double> opt(n);
        opt.set_lr(0.0);
        Vector<double> q = p;
        opt.step(q, g1);
        CHECK(q == p);
        opt.set_lr(0.1);
        CHECK(opt.lr() == 0.1);
        opt.step(q, g2);
        CHECK(max_abs(q - p) > 0.05);
    }
    SECTION("state() / set_state() resume exactly") {
        fmd::nn::AdamW<double> a(n, {.lr = 0.01});
        Vector<double> qa = p;
        a.step(qa, g1);
        a.step(qa, g2);
        fmd::nn::AdamW<double> b(n, {.lr = 0.01});
        b.set_state(a.state());
        CHECK(b.steps() == 2);
        REQUIRE(b.state().buffers.size() == fmd::nn::AdamW<double>::state_names.size());
        Vector<double> qb = qa;
        a.step(qa, g1);
        b.step(qb, g1);
        CHECK(qa == qb);

        fmd::nn::SGD<double> s(n, {.lr = 0.1, .momentum = 0.9});
        Vector<double> qs = p;
        s.step(qs, g1);
        fmd::nn::SGD<double> s2(n, {.lr = 0.1, .momentum = 0.9});
        s2.set_state(s.state());
        Vector<double> qs2 = qs;
        s.step(qs, g2);
        s2.step(qs2, g2);
        CHECK(qs == qs2);

        fmd::nn::OptimizerState<double> wrong = a.state();
        wrong.buffers[1].resize(3);
        CHECK_THROWS_WITH(b.set_state(wrong), Contains("'state'"));
        wrong.buffers.pop_back();
        CHECK_THROWS_WITH(b.set_state(wrong), Contains("'state'"));
    }
}

TEST_CASE("Optimizers: bad hyper-parameters and buffers throw naming the argument", "[nn]") {
    using fmd::nn::Adam;
    using fmd::nn::AdamW;
    using fmd::nn::SGD;
    CHECK_THROWS_AS(AdamW<float>(10, {.lr = -1.0}), fmd::error);
    CHECK_THROWS_WITH(AdamW<float>(10, {.lr = -1.0}), Contains("'lr'"));
    CHECK_THROWS_WITH(AdamW<float>(10, {.lr = NAN}), Contains("'lr'"));
    CHECK_THROWS_WITH(AdamW<float>(10, {.beta1 = 1.0}), Contains("'beta1'"));
    CHECK_THROWS_WITH(Adam<float>(10, {.beta2 = -0.1}), Contains("'beta2'"));
    CHECK_THROWS_WITH(Adam<float>(10, {.eps = -1e-8}), Contains("'eps'"));
    CHECK_THROWS_WITH(AdamW<float>(10, {.weight_decay = -0.01}), Contains("'weight_decay'"));
    CHECK_THROWS_WITH(AdamW<float>(0), Contains("'parameter_count'"));
    CHECK_THROWS_WITH(SGD<float>(10, {.momentum = -0.5}), Contains("'momentum'"));
    CHECK_THROWS_WITH(SGD<float>(10, {.dampening = -0.5}), Contains("'dampening'"));
    CHECK_THROWS_WITH(SGD<float>(10, {.lr = 0.1, .nesterov = true}), Contains("'nesterov'"));
    CHECK_THROWS_WITH(SGD<float>(10, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}), Contains("'nesterov'"));

    AdamW<double> opt(4);
    Vector<double> p(4), g(4), g3(3), p5(5);
    p.setZero();
    g.setZero();
    CHECK_THROWS_WITH(opt.step(p5, g), Contains("'params'"));
    CHECK_THROWS_WITH(opt.step(p, g3), Contains("'grads'"));
    CHECK_THROWS_WITH(opt.set_lr(-1.0), Contains("'lr'"));
    SGD<double> sgd(4, {.lr = 0.1});
    CHECK_THROWS_WITH(sgd.step(p, g3), Contains("'grads'"));
    CHECK_THROWS_WITH(sgd.set_lr(INFINITY), Contains("'lr'"));
}

TEST_CASE("clip_grad_norm: torch's clip_grad_norm_ semantics", "[nn]") {
    const auto ref = fmd_test::read_reference();
    Vector<double> g = ref.at("clip_in").transpose();
    const double norm = fmd::nn::clip_grad_norm(g, 1.0);
    CHECK(norm == Approx(ref.at("clip_norm")(0, 0)).epsilon(1e-15));
    CHECK(norm == Approx(std::sqrt(1.0 + 4.0 + 9.0 + 0.25 + 100.0)).epsilon(1e-15));
    CHECK(max_abs(g - ref.at("clip_out_max1").transpose()) < 1e-15);
    CHECK(g.norm() == Approx(1.0 / (1.0 + 1e-6 / norm)).epsilon(1e-12));  // max_norm·‖g‖/(‖g‖ + 1e-6)

    // below the threshold nothing changes, and the norm is still reported
    Vector<float> small = (Vector<float>(3) << 0.3f, -0.4f, 0.0f).finished();
    const Vector<float> before = small;
    CHECK(fmd::nn::clip_grad_norm(small, 1.0) == Approx(0.5).epsilon(1e-7));
    CHECK(small == before);
    // works on a network's gradient buffer (an Eigen::Map)
    fmd::nn::MLP<float> net({.dim = 2, .width = 8, .depth = 1});
    net.gradients().setConstant(1.0f);
    const double big = fmd::nn::clip_grad_norm(net.gradients(), 2.0);
    CHECK(big == Approx(std::sqrt(static_cast<double>(net.parameter_count()))));
    CHECK(net.gradients().cast<double>().norm() == Approx(2.0).epsilon(1e-5));
    CHECK_THROWS_WITH(fmd::nn::clip_grad_norm(g, 0.0), Contains("'max_norm'"));
    CHECK_THROWS_WITH(fmd::nn::clip_grad_norm(g, NAN), Contains("'max_norm'"));
}

TEST_CASE("WarmupCosine: linear warm-up, cosine decay to the floor", "[nn]") {
    const fmd::nn::WarmupCosine s{.peak_lr = 1e-3, .warmup_steps = 100, .total_steps = 1100, .min_lr = 1e-5};
    CHECK(s.lr(0) == 0.0);
    CHECK(s.lr(50) == Approx(5e-4).epsilon(1e-14));
    CHECK(s.lr(99) == Approx(9.9e-4).epsilon(1e-14));
    CHECK(s.lr(100) == Approx(1e-3).epsilon(1e-14));                   // end of warm-up: the peak
    CHECK(s.lr(600) == Approx(1e-5 + 0.5 * (1e-3 - 1e-5)).epsilon(1e-14));  // half-way: the mean
    CHECK(s.lr(350) == Approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + std::cos(std::numbers::pi / 4))).epsilon(1e-14));
    CHECK(s.lr(1100) == Approx(1e-5).epsilon(1e-14));                   // cosine end: the floor
    CHECK(s.lr(100000) == 1e-5);
    for (std::int64_t k = 100; k < 1100; k += 37) CHECK(s.lr(k + 1) <= s.lr(k));
    const fmd::nn::WarmupCosine no_warmup{.peak_lr = 0.1, .warmup_steps = 0, .total_steps = 10};
    CHECK(no_warmup.lr(0) == 0.1);
    CHECK(no_warmup.lr(10) == 0.0);
    CHECK(fmd::nn::ConstantLr{0.01}.lr(123) == 0.01);

    CHECK_THROWS_WITH((fmd::nn::WarmupCosine{.warmup_steps = 10, .total_steps = 10}.lr(0)), Contains("'total_steps'"));
    CHECK_THROWS_WITH((fmd::nn::WarmupCosine{.warmup_steps = -1}.lr(0)), Contains("'warmup_steps'"));
    CHECK_THROWS_WITH((fmd::nn::WarmupCosine{.peak_lr = 1e-3, .total_steps = 10, .min_lr = 1e-2}.lr(0)), Contains("'min_lr'"));
    CHECK_THROWS_WITH((fmd::nn::WarmupCosine{.peak_lr = -1.0}.lr(0)), Contains("'peak_lr'"));
    CHECK_THROWS_WITH(s.lr(-1), Contains("'step'"));
}

TEST_CASE("MLP + AdamW + clipping + schedule: a short regression run learns", "[nn]") {
    // Fit out = A x + c(t) with a small float network: the loss must fall by an order of magnitude.
    fmd::Rng rng(17);
    fmd::nn::MLP<float> net({.dim = 2, .width = 32, .depth = 2, .activation = fmd::nn::Activation::silu,
                             .time = {.channels = 16, .scale = 10.0}},
                            rng);
    fmd::nn::AdamW<float> opt(net.parameter_count(), {.lr = 3e-3, .weight_decay = 0.0});
    const fmd::nn::WarmupCosine schedule{.peak_lr = 1e-2, .warmup_steps = 20, .total_steps = 400, .min_lr = 1e-4};
    const Eigen::Index n = 64;
    Matrix<float> x(2, n), target(2, n), out(2, n), grad(2, n);
    Row<float> t(n);
    auto loss_and_grad = [&] {
        for (Eigen::Index j = 0; j < n; ++j) {
            t(j) = static_cast<float>(fmd::uniform01(rng));
            target(0, j) = 0.5f * x(0, j) - x(1, j) + t(j);
            target(1, j) = x(0, j) * 0.8f + 0.3f - t(j) * t(j);
        }
        net.forward(x, t, out);
        grad = (out - target) * (2.0f / static_cast<float>(out.size()));
        return (out - target).squaredNorm() / static_cast<float>(out.size());
    };
    fmd::fill_normal(x, rng);
    const float first = loss_and_grad();
    float last = first;
    for (std::int64_t step = 0; step < 400; ++step) {
        fmd::fill_normal(x, rng);
        last = loss_and_grad();
        net.backward(grad);
        fmd::nn::clip_grad_norm(net.gradients(), 1.0);
        opt.set_lr(schedule.lr(step));
        opt.step(net.parameters(), net.gradients());
    }
    INFO("first loss " << first << ", last loss " << last);
    CHECK(last < 0.1f * first);
    CHECK(opt.steps() == 400);
}

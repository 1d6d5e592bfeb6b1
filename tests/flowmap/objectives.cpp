// Flow-map objectives (theory.md §9.3–§9.5) with networks the library did not write: MeanFlow's
// target v + (r − t)(∂ₓū v + ∂ₜū) and its adaptive weight, the shortcut bootstrap, the consistency
// targets and the boundary; the flow-map sampler's NFE and errors; and short training runs on a
// 2-D mixture against a CFM model trained for the same steps and sampled with 100 Euler steps.
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

// One namespace for the whole file: the test sources are compiled together (unity build).
namespace flowmap_objectives_test {

using fmd::In;
using fmd::Matrix;
using fmd::Out;
using fmd::Row;
using fmd::RowIn;
using Path = fmd::GaussianPath<fmd::schedule::Linear>;


// ū(x, t, r) = A x (1 + t²) + b r: a two-time "network" with a known derivative; it records the
// gradient handed to backward.
struct AffineFlowMap {
    using Scalar = double;
    Eigen::Matrix2d A{{0.5, -0.25}, {0.75, 1.0}};
    Eigen::Vector2d b{0.3, -0.2};
    Matrix<double> x_, g_;
    Row<double> t_, r_;
    fmd::Vector<double> params_ = fmd::Vector<double>::Zero(1), grads_ = fmd::Vector<double>::Zero(1);
    long forwards = 0;

    Eigen::Index input_dim() const { return 2; }
    Eigen::Index parameter_count() const { return 1; }
    Eigen::Ref<fmd::Vector<double>> parameters() { return params_; }
    Eigen::Ref<fmd::Vector<double>> gradients() { return grads_; }
    void eval(In<double> x, double t, double r, Out<double> out) const { out = (1 + t * t) * (A * x); out.colwise() += r * b; }
    void operator()(In<double> x, double t, Out<double> out) { eval(x, t, t, out); }
    void operator()(In<double> x, double t, double r, Out<double> out) { eval(x, t, r, out); }
    void forward(In<double> x, const RowIn<double>& t, Out<double> out) { forward(x, t, t, out); }
    void forward(In<double> x, const RowIn<double>& t, const RowIn<double>& r, Out<double> out) {
        ++forwards;
        x_ = x;
        t_ = t;
        r_ = r;
        for (Eigen::Index j = 0; j < x.cols(); ++j) eval(x.col(j), t(j), r(j), out.col(j));
    }
    // d/dε ū(x + εv, t + εṫ, r + εṙ) = (1 + t²) A v + 2tṫ A x + ṙ b
    void tangent(In<double> v, double td, double rd, Out<double> out) const {
        for (Eigen::Index j = 0; j < v.cols(); ++j) {
            const double t = t_(j);
            out.col(j) = (1 + t * t) * (A * v.col(j)) + 2 * t * td * (A * x_.col(j)) + rd * b;
        }
    }
    void backward(In<double> g) { g_ = g; }
};

// F(x, t) = c·x: a one-time "network" for the consistency objectives.
struct ScaledIdentity {
    using Scalar = double;
    double c = 0.5;
    Matrix<double> g_;
    fmd::Vector<double> params_ = fmd::Vector<double>::Zero(1), grads_ = fmd::Vector<double>::Zero(1);
    Eigen::Index input_dim() const { return 2; }
    Eigen::Index parameter_count() const { return 1; }
    Eigen::Ref<fmd::Vector<double>> parameters() { return params_; }
    Eigen::Ref<fmd::Vector<double>> gradients() { return grads_; }
    void operator()(In<double> x, double, Out<double> out) { out = c * x; }
    void forward(In<double> x, const RowIn<double>&, Out<double> out) { out = c * x; }
    void backward(In<double> g) { g_ = g; }
};

Matrix<double> normal(long rows, long cols, fmd::Rng& rng) {
    Matrix<double> m(rows, cols);
    fmd::fill_normal(m, rng);
    return m;
}


static_assert(fmd::nn::TwoTimeNetwork<AffineFlowMap, double>);
static_assert(fmd::train::Objective<fmd::flowmap::MeanFlow<double>, AffineFlowMap, Path, double>);
static_assert(!fmd::FlowMap<ScaledIdentity, double>);

TEST_CASE("MeanFlow: target v + (r - t)(∂x ū v + ∂t ū), adaptive weight, r = t for the rest", "[flowmap][meanflow]") {
    fmd::Rng rng(4);
    const Matrix<double> z = normal(2, 400, rng), eps = normal(2, 400, rng);
    for (double p : {0.0, 1.0, 0.75}) {
        AffineFlowMap net;
        fmd::flowmap::MeanFlow<double> mf({.fraction_unequal = 0.5, .p = p, .c = 1e-3});
        const double loss = mf.value_and_gradients(net, Path{}, z, eps, {}, rng);
        const auto& t = mf.last_t();
        const auto& r = mf.last_r();
        long unequal = 0;
        double sum = 0;
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            REQUIRE(t(j) <= r(j));
            unequal += r(j) != t(j);
            const Eigen::Vector2d v = z.col(j) - eps.col(j), x = t(j) * z.col(j) + (1 - t(j)) * eps.col(j);
            const Eigen::Vector2d dudt = (1 + t(j) * t(j)) * (net.A * v) + 2 * t(j) * (net.A * x);
            const Eigen::Vector2d target = v + (r(j) - t(j)) * dudt;
            CHECK((mf.last_target().col(j) - target).norm() <= 1e-12 * (1 + target.norm()));
            const Eigen::Vector2d pred = (1 + t(j) * t(j)) * (net.A * x) + r(j) * net.b, delta = pred - target;
            const double w = p == 0 ? 1.0 : std::pow(delta.squaredNorm() + 1e-3, -p);
            CHECK((net.g_.col(j) - 2 * w * delta / 400.0).norm() <= 1e-12 * (1 + delta.norm()));
            sum += delta.squaredNorm();
        }
        CHECK(loss == Approx(sum / 800.0).epsilon(1e-12));
        CHECK(unequal > 150);
        CHECK(unequal < 250);  // fraction 0.5 of 400
    }
    CHECK_THROWS_WITH(fmd::flowmap::MeanFlow<double>({.fraction_unequal = 1.5}), Catch::Contains("'fraction_unequal'"));
    CHECK_THROWS_WITH(fmd::flowmap::MeanFlow<double>({.c = 0.0}), Catch::Contains("'c'"));
}

TEST_CASE("MeanFlow with guidance folds the unconditional branch into the target", "[flowmap][meanflow]") {
    // A conditional two-time MLP: labels kept get v ← ω v + (1 − ω) ū(x, t, t | ∅); dropped ones keep v.
    fmd::Rng rng(8);
    fmd::nn::MLP<double> net({.dim = 2, .width = 16, .depth = 1, .num_classes = 2, .two_times = true}, rng);
    const Matrix<double> z = normal(2, 50, rng), eps = normal(2, 50, rng);
    std::vector<int> labels(50);
    for (int j = 0; j < 50; ++j) labels[static_cast<std::size_t>(j)] = j % 3;  // 2 = ∅
    fmd::flowmap::MeanFlow<double> plain({.fraction_unequal = 0.0}), guided({.fraction_unequal = 0.0, .omega = 2.0});
    fmd::Rng a(1), b(1);
    plain.value_and_gradients(net, Path{}, z, eps, labels, a);
    guided.value_and_gradients(net, Path{}, z, eps, labels, b);
    REQUIRE(plain.last_t() == guided.last_t());
    Matrix<double> uncond(2, 1);
    for (int j = 0; j < 50; ++j) {
        const double t = plain.last_t()(j);
        const Eigen::Vector2d v = z.col(j) - eps.col(j), x = t * z.col(j) + (1 - t) * eps.col(j);
        Eigen::Vector2d expect = v;
        if (labels[static_cast<std::size_t>(j)] != 2) {
            const int null = 2;
            net(x, t, t, fmd::Labels(&null, 1), uncond);
            expect = 2.0 * v - uncond.col(0);
        }
        CHECK((guided.last_target().col(j) - expect).norm() <= 1e-10 * (1 + expect.norm()));
        CHECK((plain.last_target().col(j) - v).norm() <= 1e-12 * (1 + v.norm()));
    }
}

TEST_CASE("Shortcut: self-consistency targets average two half steps; flow matching at d = 0", "[flowmap][shortcut]") {
    fmd::Rng rng(2);
    AffineFlowMap net;
    const Matrix<double> z = normal(2, 64, rng), eps = normal(2, 64, rng);
    fmd::flowmap::Shortcut<double> sc({.max_steps = 8, .fraction_self = 0.5});
    sc.value_and_gradients(net, Path{}, z, eps, {}, rng);
    const auto& t = sc.last_t();
    const auto& r = sc.last_r();
    Matrix<double> s1(2, 1), s2(2, 1);
    for (Eigen::Index j = 0; j < 64; ++j) {
        const Eigen::Vector2d x = t(j) * z.col(j) + (1 - t(j)) * eps.col(j);
        if (j >= 32) {
            CHECK(r(j) == t(j));
            CHECK((sc.last_target().col(j) - (z.col(j) - eps.col(j))).norm() <= 1e-12);
            continue;
        }
        const double two_d = r(j) - t(j), d = two_d / 2;
        // 2d ∈ {1, 1/2, 1/4} for M = 8, t on its multiples.
        CHECK((two_d == 1.0 || two_d == 0.5 || two_d == 0.25));
        CHECK(std::fmod(t(j), two_d) == 0.0);
        const bool finest = d == 1.0 / 8;  // bootstraps from the instantaneous velocity
        net(x, t(j), finest ? t(j) : t(j) + d, s1);
        const Eigen::Vector2d x2 = x + d * s1.col(0);
        net(x2, t(j) + d, finest ? t(j) + d : t(j) + 2 * d, s2);
        CHECK((sc.last_target().col(j) - 0.5 * (s1.col(0) + s2.col(0))).norm() <= 1e-12);
    }
    CHECK(net.forwards == 3);  // two bootstrap passes on the self-consistency columns, one training pass
    CHECK_THROWS_WITH(fmd::flowmap::Shortcut<double>({.max_steps = 12}), Catch::Contains("'max_steps'"));
    CHECK_THROWS_WITH(fmd::flowmap::Shortcut<double>({.t_max = 0.0}), Catch::Contains("'t_max'"));
    // Flow-matching times below t_max (networks singular at t = 1 train with t_max < 1).
    fmd::flowmap::Shortcut<double> bounded({.max_steps = 8, .fraction_self = 0.0, .t_max = 0.3});
    bounded.value_and_gradients(net, Path{}, z, eps, {}, rng);
    CHECK(bounded.last_t().maxCoeff() < 0.3);
    CHECK(bounded.last_t().maxCoeff() > 0.2);
}

TEST_CASE("Consistency training: target f(x_b, t_b) on the next level, f(x, 1) = x, weight 1/(σ_i − σ_{i+1})", "[flowmap][consistency]") {
    fmd::Rng rng(6);
    ScaledIdentity net;
    const Matrix<double> z = normal(2, 300, rng), eps = normal(2, 300, rng);
    fmd::flowmap::ConsistencyTraining<double> ct({.s0 = 4, .s1 = 16, .total_steps = 30, .huber_c = 0.1});
    CHECK(ct.discretization(0) == 4);
    CHECK(ct.discretization(10) == 8);
    CHECK(ct.discretization(29) == 16);
    CHECK(ct.discretization(1000) == 16);
    const double loss = ct.value_and_gradients(net, Path{}, z, eps, {}, rng);
    const auto& levels = ct.levels();
    REQUIRE(levels.size() == 5);
    CHECK(levels.back() == 1.0);
    // Recompute every column's loss for whichever level pair reproduces the stored gradient.
    double sum = 0;
    long boundary = 0;
    for (Eigen::Index j = 0; j < 300; ++j) {
        bool found = false;
        for (std::size_t i = 0; i + 1 < levels.size() && !found; ++i) {
            const double ta = levels[i], tb = levels[i + 1];
            const Eigen::Vector2d xa = ta * z.col(j) + (1 - ta) * eps.col(j), xb = tb * z.col(j) + (1 - tb) * eps.col(j);
            const Eigen::Vector2d fb = xb + (1 - tb) * net.c * xb;  // = xb at tb = 1
            const Eigen::Vector2d delta = xa + (1 - ta) * net.c * xa - fb;
            const double sa = (1 - ta) / ta, sb = tb == 1.0 ? 0.0 : (1 - tb) / tb, lambda = 1 / (sa - sb);
            const double root = std::sqrt(delta.squaredNorm() + 0.01);
            const Eigen::Vector2d g = (1 - ta) * lambda * delta / root / 300.0;
            if ((net.g_.col(j) - g).norm() <= 1e-9 * (1 + g.norm())) {
                found = true;
                sum += lambda * (root - 0.1);
                boundary += tb == 1.0;
            }
        }
        CHECK(found);
    }
    CHECK(loss == Approx(sum / 300).epsilon(1e-9));
    CHECK(boundary > 0);  // the last level pair, whose target is x itself, was drawn
    CHECK_THROWS_WITH(fmd::flowmap::ConsistencyTraining<double>({.s0 = 8, .s1 = 4}), Catch::Contains("'s1'"));
}

TEST_CASE("Consistency sampling and the consistency flow map", "[flowmap][consistency]") {
    fmd::Rng rng(9);
    ScaledIdentity net;
    const Matrix<double> x0 = normal(2, 5, rng);
    // One jump from t = 0: f(x, 0) = x + F(x, 0) = 1.5 x, through both interfaces.
    Matrix<double> x = x0, work;
    const auto stats = fmd::flowmap::sample_consistency(net, Path{}, x, {0.0}, rng, work);
    CHECK(stats.nfe == 1);
    CHECK((x - 1.5 * x0).norm() <= 1e-14);
    fmd::flowmap::ConsistencyFlowMap<double, ScaledIdentity, Path> map(net, Path{});
    x = x0;
    CHECK(fmd::sample_flow_map(map, x, {0.0, 1.0}).nfe == 1);
    CHECK((x - 1.5 * x0).norm() <= 1e-14);
    // A jump to r < 1 re-noises with the implied noise: from t = 0, ε̂ = x, X_r = r x̂ + (1 − r) x.
    x = x0;
    fmd::flow_map_jump(map, x, 0.0, 0.5, work);
    CHECK((x - (0.5 * 1.5 * x0 + 0.5 * x0)).norm() <= 1e-14);
    // Three levels: three evaluations, fresh noise between them.
    x = x0;
    CHECK(fmd::flowmap::sample_consistency(net, Path{}, x, {0.0, 0.5, 0.8}, rng, work).nfe == 3);
    CHECK_THROWS_WITH(fmd::flowmap::sample_consistency(net, Path{}, x, {0.5, 0.2}, rng, work), Catch::Contains("'times'"));
    CHECK_THROWS_WITH(fmd::flowmap::sample_consistency(net, Path{}, x, {1.0}, rng, work), Catch::Contains("'times'"));
    CHECK_THROWS_WITH(map(x, 0.5, 0.5, work), Catch::Contains("'r'"));
}

TEST_CASE("Flow-map sampler: NFE = jumps, velocity fields are Euler, bad times are named", "[flowmap]") {
    fmd::Rng rng(12);
    fmd::nn::MLP<double> net({.dim = 2, .width = 16, .depth = 2}, rng);
    const Matrix<double> x0 = normal(2, 7, rng);
    fmd::AsFlowMap as_map(net);
    fmd::solver::Euler<double> euler;
    for (long k : {1L, 3L, 8L}) {
        Matrix<double> a = x0, b = x0;
        long observed = 0;
        const auto stats = fmd::sample_flow_map(as_map, a, fmd::grid::uniform(k), [&](double, const Matrix<double>&) { ++observed; });
        fmd::sample(net, b, fmd::grid::uniform(k), euler);
        CHECK(stats.nfe == k);
        CHECK(observed == k + 1);
        CHECK((a - b).norm() <= 1e-13 * b.norm());
    }
    Matrix<double> x = x0, work;
    CHECK_THROWS_WITH(fmd::sample_flow_map(as_map, x, {0.0, 0.5, 0.4}), Catch::Contains("'grid'"));
    CHECK_THROWS_WITH(fmd::sample_flow_map(as_map, x, {0.0, 1.5}), Catch::Contains("'grid'"));
    CHECK_THROWS_WITH(fmd::flow_map_jump(as_map, x, -0.1, 0.5, work), Catch::Contains("'t'"));
    CHECK_THROWS_WITH(fmd::flow_map_jump(as_map, x, 0.2, 1.5, work), Catch::Contains("'r'"));
    CHECK_THROWS_WITH(fmd::flow_map_jump(as_map, x, 0.6, 0.5, work), Catch::Contains("'r'"));
    Matrix<double> empty(2, 0);
    CHECK_THROWS_WITH(fmd::sample_flow_map(as_map, empty, {0.0, 1.0}), Catch::Contains("'x'"));
}

TEST_CASE("Guided over a conditional flow map mixes ū(x, t, r | y) and ū(x, t, r | ∅)", "[flowmap][guidance]") {
    fmd::Rng rng(17);
    fmd::nn::MLP<double> net({.dim = 2, .width = 16, .depth = 2, .num_classes = 3, .two_times = true}, rng);
    net.class_table() = normal(16, 4, rng);  // labels matter
    const Matrix<double> x = normal(2, 6, rng);
    const std::vector<int> labels = {0, 1, 2, 0, 1, 2};
    const std::vector<int> nulls(6, 3);
    Matrix<double> cond(2, 6), uncond(2, 6), mixed(2, 6);
    net(x, 0.2, 0.7, labels, cond);
    net(x, 0.2, 0.7, nulls, uncond);
    fmd::Guided<double, fmd::nn::MLP<double>> guided(net, net.null_label(), 2.5, labels);
    static_assert(fmd::FlowMap<decltype(guided), double>);
    guided(x, 0.2, 0.7, mixed);
    CHECK((mixed - (uncond + 2.5 * (cond - uncond))).norm() <= 1e-12 * mixed.norm());
    // One guided jump through the sampler.
    Matrix<double> y = x;
    CHECK(fmd::sample_flow_map(guided, y, {0.2, 0.7}).nfe == 1);
    CHECK((y - (x + 0.5 * mixed)).norm() <= 1e-12 * y.norm());
}

TEST_CASE("EndpointFlowMap: ū = (D − x)/(1 − t), its tangent and gradient against central differences", "[flowmap]") {
    fmd::Rng rng(21);
    fmd::nn::MLP<double> inner({.dim = 3, .width = 16, .depth = 2, .activation = fmd::nn::Activation::silu, .time = {.scale = 5.0}, .two_times = true},
                               rng);
    fmd::flowmap::EndpointFlowMap map(inner);
    static_assert(fmd::nn::TwoTimeNetwork<decltype(map), double>);
    const long n = 6;
    const Matrix<double> x = normal(3, n, rng), v = normal(3, n, rng), g = normal(3, n, rng);
    Row<double> t(n), r(n);
    for (long j = 0; j < n; ++j) {
        t(j) = 0.12 * static_cast<double>(j) + 0.05;
        r(j) = std::min(1.0, t(j) + 0.3);
    }
    auto at = [&](double e, double td, double rd) {
        Matrix<double> out(3, n);
        map.forward(x + e * v, (t.array() + e * td).matrix(), (r.array() + e * rd).matrix(), out);
        return out;
    };
    Matrix<double> u = at(0, 0, 0), d(3, 1);
    for (long j = 0; j < n; ++j) {
        inner(x.col(j), t(j), r(j), d);
        CHECK((u.col(j) - (d.col(0) - x.col(j)) / (1 - t(j))).norm() <= 1e-12 * (1 + u.col(j).norm()));
    }
    for (auto [td, rd] : {std::pair{1.0, 0.0}, std::pair{0.3, 0.8}}) {
        Matrix<double> tan(3, n);
        at(0, 0, 0);
        map.tangent(v, td, rd, tan);
        const double h = 1e-6;
        const Matrix<double> fd = (at(h, td, rd) - at(-h, td, rd)) / (2 * h);
        CHECK((tan - fd).norm() <= 1e-7 * fd.norm());
    }
    // ∂<g, ū>/∂θ_k by backward against a central difference.
    at(0, 0, 0);
    map.backward(g);
    const long k = inner.layer_offset(inner.interval_layer()) + 2;
    const double analytic = map.gradients()(k), w = inner.parameters()(k), h = 1e-6;
    inner.parameters()(k) = w + h;
    const double up = (g.array() * at(0, 0, 0).array()).sum();
    inner.parameters()(k) = w - h;
    const double down = (g.array() * at(0, 0, 0).array()).sum();
    inner.parameters()(k) = w;
    CHECK(analytic == Approx((up - down) / (2 * h)).epsilon(1e-6));
    Matrix<double> out(3, n);
    CHECK_THROWS_WITH(map(x, 1.0, 1.0, out), Catch::Contains("'t'"));
    CHECK(map.describe().rfind("flowmap::EndpointFlowMap(nn::MLP(", 0) == 0);
}

TEST_CASE("Few-step models trained briefly approach a 100-step CFM model", "[flowmap][training]") {
    // A ring of 8 narrow Gaussians: the 1-step Euler sample of the CFM model is worse than noise
    // (SW2 ~1.9 against 1.2); the few-step families must come within 3.5x of its 100-step SW2.
    using Net = fmd::nn::MLP<double>;
    fmd::Rng rng(1);
    const auto mix = fmd::GaussianMixture<double>::ring(8, 3.0, 0.3);
    const fmd::nn::MLPConfig one{.dim = 2, .width = 32, .depth = 2, .activation = fmd::nn::Activation::silu, .time = {.scale = 30.0}};
    fmd::nn::MLPConfig two = one;
    two.two_times = true;
    const long steps = 700;
    auto train = [&](Net& net, auto objective) {
        fmd::nn::AdamW<double> opt(net.parameter_count(), {.lr = 2e-3});
        fmd::train::Trainer trainer(Path{}, objective, net, opt, {.batch_size = 96});
        for (long s = 0; s < steps; ++s) trainer.train_step(mix, rng);
    };
    Net cfm(one, rng), mf(two, rng), ct(one, rng), sc(two, rng);
    train(cfm, fmd::loss::cfm);
    train(mf, fmd::flowmap::MeanFlow<double>({.fraction_unequal = 0.75, .p = 0.75}));
    train(ct, fmd::flowmap::ConsistencyTraining<double>({.s0 = 10, .s1 = 160, .total_steps = steps}));
    train(sc, fmd::flowmap::Shortcut<double>({.max_steps = 64}));

    Matrix<double> noise(2, 1000), fresh(2, 1000);
    fmd::fill_normal(noise, rng);
    mix.sample(fresh, rng);
    auto sw = [&](const Matrix<double>& x) {
        fmd::Rng p(3);
        return fmd::metrics::sliced_wasserstein(x, fresh, 64, p);
    };
    fmd::solver::Euler<double> euler;
    Matrix<double> x = noise;
    fmd::sample(cfm, x, fmd::grid::uniform(100), euler);
    const double reference = sw(x);
    x = noise;
    fmd::sample(cfm, x, fmd::grid::uniform(1), euler);
    const double cfm_one = sw(x);
    x = noise;
    fmd::sample_flow_map(mf, x, fmd::grid::uniform(1));
    const double meanflow_one = sw(x);
    x = noise;
    fmd::sample_flow_map(sc, x, fmd::grid::uniform(1));
    const double shortcut_one = sw(x);
    x = noise;
    Matrix<double> work;
    fmd::flowmap::sample_consistency(ct, Path{}, x, {0.0, 0.5}, rng, work);
    const double consistency_two = sw(x);
    INFO("SW2: CFM 100 Euler " << reference << ", CFM 1 Euler " << cfm_one << ", MeanFlow 1 NFE " << meanflow_one << ", shortcut 1 NFE "
                               << shortcut_one << ", consistency 2 NFE " << consistency_two << ", noise " << sw(noise));
    CHECK(cfm_one > 1.0);
    CHECK(meanflow_one < 3.5 * reference);
    CHECK(shortcut_one < 3.5 * reference);
    CHECK(consistency_two < 3.5 * reference);
}

}  // namespace flowmap_objectives_test

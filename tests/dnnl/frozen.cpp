// nn::FrozenMLP (fmd/nn/dnnl.hpp): the oneDNN snapshot equals the MLP it was taken from, to float
// rounding in f32 and to bfloat16 rounding in bf16 (and is really rounded: a silent float32 path
// would not be the advertised speed); snapshot semantics; errors naming the argument.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/nn/dnnl.hpp>
#include <fmd/nn/mlp.hpp>
#include <fmd/solver/grid.hpp>
#include <fmd/solver/integrate.hpp>
#include <fmd/solver/steppers.hpp>

using fmd::Matrix;
using fmd::nn::FrozenMLP;
using fmd::nn::MLP;
using fmd::nn::Precision;

namespace {

double rel(const Matrix<float>& a, const Matrix<float>& b) { return (a - b).norm() / b.norm(); }

Matrix<float> normal(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
    fmd::Rng rng(seed);
    Matrix<float> m(rows, cols);
    fmd::fill_normal(m, rng);
    return m;
}

}  // namespace

TEST_CASE("FrozenMLP: f32 equals the MLP, bf16 differs by bfloat16 rounding only", "[dnnl]") {
    MLP<float> net({.dim = 2, .width = 256, .depth = 4}, 3);
    const Matrix<float> x = normal(2, 300, 1);
    Matrix<float> want(2, 300), got(2, 300);
    for (double t : {0.0, 0.37, 1.0}) {
        net(x, t, want);
        FrozenMLP f32(net, Precision::f32);
        f32(x, t, got);
        CHECK(rel(got, want) < 1e-5);
        FrozenMLP bf16(net);
        bf16(x, t, got);
        INFO("bf16 kernel: " << bf16.implementation(300));
        const double e = rel(got, want);
        CHECK(e < 3e-2);  // 8 significant bits per activation through 4 blocks
        CHECK(e > 1e-4);  // and the rounding is really there
    }
}

TEST_CASE("FrozenMLP: SiLU, classes and two times follow the MLP's calls", "[dnnl]") {
    const fmd::nn::MLPConfig config{.dim = 3, .width = 64, .depth = 2, .activation = fmd::nn::Activation::silu,
                                    .time = {.kind = fmd::nn::Embedding::fourier, .sigma = 3.0}, .num_classes = 3, .two_times = true};
    MLP<float> net(config, 7);
    FrozenMLP f32(net, Precision::f32), bf16(net, Precision::bf16);
    const Matrix<float> x = normal(3, 40, 2);
    std::vector<int> labels(40);
    for (std::size_t j = 0; j < labels.size(); ++j) labels[j] = static_cast<int>(j % 4);
    Matrix<float> want(3, 40), got(3, 40);
    net(x, 0.2, 0.9, want);
    f32(x, 0.2, 0.9, got);
    CHECK(rel(got, want) < 1e-5);
    bf16(x, 0.2, 0.9, got);
    CHECK(rel(got, want) < 3e-2);
    net(x, 0.6, labels, want);
    f32(x, 0.6, labels, got);
    CHECK(rel(got, want) < 1e-5);
    net(x, 0.6, want);  // ∅ for every column
    f32(x, 0.6, got);
    CHECK(rel(got, want) < 1e-5);
}

TEST_CASE("FrozenMLP: a snapshot until refresh; sampling with it tracks the MLP", "[dnnl]") {
    MLP<float> net({.dim = 2, .width = 128, .depth = 3}, 4);
    FrozenMLP frozen(net);
    const Matrix<float> x = normal(2, 64, 5);
    Matrix<float> before(2, 64), after(2, 64), want(2, 64);
    frozen(x, 0.5, before);
    net.parameters() *= 1.5f;  // "training" after the snapshot
    frozen(x, 0.5, after);
    CHECK(after == before);
    frozen.refresh(net);
    frozen(x, 0.5, after);
    net(x, 0.5, want);
    CHECK(rel(after, want) < 3e-2);

    // 20 Euler steps (theory.md §7.1) with the bf16 field and with the MLP from the same noise.
    Matrix<float> a = normal(2, 500, 6), b = a;
    fmd::solver::Euler<float> euler;
    fmd::sample(net, a, fmd::grid::uniform(20), euler);
    fmd::sample(frozen, b, fmd::grid::uniform(20), euler);
    CHECK(rel(b, a) < 3e-2);
}

TEST_CASE("FrozenMLP: bad input throws naming the argument", "[dnnl]") {
    MLP<float> net({.dim = 2, .width = 32, .depth = 1}, 1);
    FrozenMLP frozen(net);
    auto names = [](auto&& f, const std::string& arg) {
        try {
            f();
            FAIL("no error");
        } catch (const fmd::error& e) {
            CHECK(std::string(e.what()).find("'" + arg + "'") != std::string::npos);
        }
    };
    Matrix<float> out(2, 5);
    names([&] { frozen(Matrix<float>(3, 5), 0.5, out); }, "x");
    names([&] { frozen(Matrix<float>(2, 4), 0.5, out); }, "out");
    Matrix<float> none(2, 0);
    names([&] { frozen(Matrix<float>(2, 0), 0.5, none); }, "x");  // an empty batch, as the MLP refuses it
    names([&] { frozen(Matrix<float>::Zero(2, 5), std::nan(""), out); }, "t");
    const std::vector<int> labels(5, 0);
    names([&] { frozen(Matrix<float>::Zero(2, 5), 0.5, labels, out); }, "labels");
    names([&] { frozen(Matrix<float>::Zero(2, 5), 0.5, 0.7, out); }, "r");
    MLP<float> other({.dim = 2, .width = 64, .depth = 1}, 1);
    names([&] { frozen.refresh(other); }, "net");
}

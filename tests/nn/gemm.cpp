// nn::gemm (fmd/nn/gemm.hpp) and the MLP on top of it. Compiled twice: in the main suite (Eigen's
// kernels) and in fmd_dnnl_tests with FMD_GEMM_DNNL (oneDNN's sgemm for float), so both backends
// must pass the same checks: every transpose combination on strided blocks against a plain triple
// loop, and a float MLP against the same parameters in double through every pass.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include <fmd/core/error.hpp>
#include <fmd/nn/gemm.hpp>
#include <fmd/nn/mlp.hpp>

using fmd::Matrix;
using fmd::nn::Op;

namespace {

template <class S>
Matrix<double> naive(const Matrix<S>& a, Op oa, const Matrix<S>& b, Op ob) {
    const Matrix<double> A = oa == Op::transpose ? Matrix<double>(a.transpose().template cast<double>()) : a.template cast<double>();
    const Matrix<double> B = ob == Op::transpose ? Matrix<double>(b.transpose().template cast<double>()) : b.template cast<double>();
    Matrix<double> c = Matrix<double>::Zero(A.rows(), B.cols());
    for (Eigen::Index i = 0; i < A.rows(); ++i)
        for (Eigen::Index j = 0; j < B.cols(); ++j)
            for (Eigen::Index k = 0; k < A.cols(); ++k) c(i, j) += A(i, k) * B(k, j);
    return c;
}

template <class S>
void check_all_ops(double tol) {
    const Eigen::Index m = 37, k = 53, n = 29;
    for (Op oa : {Op::none, Op::transpose})
        for (Op ob : {Op::none, Op::transpose}) {
            // Operands are blocks of larger matrices: outer stride > rows, as the MLP's leftCols views
            // of wider workspaces are not, and both must work.
            Matrix<S> big_a = Matrix<S>::Random(70, 70), big_b = Matrix<S>::Random(70, 70), big_c = Matrix<S>::Random(80, 40);
            const Eigen::Index ar = oa == Op::none ? m : k, ac = oa == Op::none ? k : m;
            const Eigen::Index br = ob == Op::none ? k : n, bc = ob == Op::none ? n : k;
            const Matrix<S> a = big_a.block(3, 5, ar, ac), b = big_b.block(1, 2, br, bc);
            const Matrix<S> c0 = big_c.block(4, 6, m, n);
            const Matrix<double> ab = naive<S>(a, oa, b, ob);

            fmd::nn::gemm<S>(big_a.block(3, 5, ar, ac), oa, big_b.block(1, 2, br, bc), ob, big_c.block(4, 6, m, n));
            CHECK((big_c.block(4, 6, m, n).template cast<double>() - ab).cwiseAbs().maxCoeff() < tol);

            big_c.block(4, 6, m, n) = c0;
            fmd::nn::gemm<S>(big_a.block(3, 5, ar, ac), oa, big_b.block(1, 2, br, bc), ob, big_c.block(4, 6, m, n), S(-0.5), S(1));
            CHECK((big_c.block(4, 6, m, n).template cast<double>() - (-0.5 * ab + c0.template cast<double>())).cwiseAbs().maxCoeff() < tol);

            big_c.block(4, 6, m, n) = c0;  // C += op(A) op(B): the accumulating form the forward pass uses
            fmd::nn::gemm<S>(big_a.block(3, 5, ar, ac), oa, big_b.block(1, 2, br, bc), ob, big_c.block(4, 6, m, n), S(1), S(1));
            CHECK((big_c.block(4, 6, m, n).template cast<double>() - (ab + c0.template cast<double>())).cwiseAbs().maxCoeff() < tol);

            // Twice the same shape (a cached plan) with other operands.
            big_a *= S(-1);
            fmd::nn::gemm<S>(big_a.block(3, 5, ar, ac), oa, big_b.block(1, 2, br, bc), ob, big_c.block(4, 6, m, n));
            CHECK((big_c.block(4, 6, m, n).template cast<double>() + ab).cwiseAbs().maxCoeff() < tol);
            big_a *= S(-1);

            big_c.block(4, 6, m, n) = c0;
            fmd::nn::gemm<S>(big_a.block(3, 5, ar, ac), oa, big_b.block(1, 2, br, bc), ob, big_c.block(4, 6, m, n), S(2), S(0.25));
            CHECK((big_c.block(4, 6, m, n).template cast<double>() - (2.0 * ab + 0.25 * c0.template cast<double>())).cwiseAbs().maxCoeff() < tol);
        }
}

template <class S>
double rel(const Matrix<S>& got, const Matrix<double>& want) {
    return (got.template cast<double>() - want).norm() / want.norm();
}

}  // namespace

TEST_CASE("nn::gemm: every transpose combination, alpha and beta, on strided blocks", "[nn][gemm]") {
    INFO("backend " << std::string(fmd::nn::gemm_backend()));
#ifdef FMD_EXPECT_GEMM_BACKEND
    CHECK(fmd::nn::gemm_backend() == FMD_EXPECT_GEMM_BACKEND);  // the CMake target reached the code
#endif
    check_all_ops<float>(1e-4);
    check_all_ops<double>(1e-12);

    // C outside its block stays untouched (a backend writing with the wrong leading dimension would not).
    Matrix<float> big = Matrix<float>::Constant(10, 10, 7.0f);
    const Matrix<float> a = Matrix<float>::Random(4, 3), b = Matrix<float>::Random(3, 5);
    fmd::nn::gemm<float>(a, b, big.block(2, 2, 4, 5));
    CHECK(big.block(2, 2, 4, 5).isApprox(a * b, 1e-5f));
    big.block(2, 2, 4, 5).setConstant(7.0f);
    CHECK((big.array() == 7.0f).all());

    // A single column (the sampling call's time vector) and an empty product.
    Matrix<float> v = Matrix<float>::Random(3, 1), out(4, 1);
    fmd::nn::gemm<float>(a, v, out);
    CHECK(out.isApprox(a * v, 1e-5f));
    Matrix<float> e(4, 0);
    fmd::nn::gemm<float>(a, Matrix<float>(3, 0), e);
    CHECK(e.size() == 0);
}

TEST_CASE("nn::gemm: mismatched shapes throw naming 'c'", "[nn][gemm]") {
    Matrix<float> a(4, 3), b(5, 2), c(4, 2);
    try {
        fmd::nn::gemm<float>(a, b, c);
        FAIL("no error");
    } catch (const fmd::error& e) {
        CHECK(std::string(e.what()).find("'c'") != std::string::npos);
        CHECK(std::string(e.what()).find("nn::gemm") != std::string::npos);
    }
    Matrix<float> c2(3, 2);
    CHECK_THROWS_AS(fmd::nn::gemm<float>(a, Op::none, Matrix<float>(3, 2), Op::none, c2), fmd::error);
}

TEST_CASE("nn::MLP in float through nn::gemm equals the same parameters in double, every pass", "[nn][gemm]") {
    // Two times and classes: every product of forward, backward, the sampling call, jvp and tangent runs.
    const fmd::nn::MLPConfig config{.dim = 3, .width = 96, .depth = 3, .activation = fmd::nn::Activation::silu,
                                    .time = {.kind = fmd::nn::Embedding::fourier, .sigma = 2.0}, .num_classes = 4, .two_times = true};
    fmd::nn::MLP<double> d(config, 11);
    fmd::nn::MLP<float> f(config, 11);
    f.parameters() = d.parameters().cast<float>();
    d.parameters() = f.parameters().cast<double>();  // the same numbers on both sides

    const Eigen::Index n = 70;
    fmd::Rng rng(5);
    Matrix<double> x(3, n), v(3, n), g(3, n);
    fmd::fill_normal(x, rng);
    fmd::fill_normal(v, rng);
    fmd::fill_normal(g, rng);
    fmd::Row<double> t(n), r(n);
    for (Eigen::Index j = 0; j < n; ++j) {
        t(j) = fmd::uniform01(rng);
        r(j) = t(j) + 0.5 * (1.0 - t(j)) * fmd::uniform01(rng);
    }
    std::vector<int> labels(static_cast<std::size_t>(n));
    for (std::size_t j = 0; j < labels.size(); ++j) labels[j] = static_cast<int>(j % 5);  // 4 = ∅
    const Matrix<float> xf = x.cast<float>(), vf = v.cast<float>(), gf = g.cast<float>();
    const fmd::Row<float> tf = t.cast<float>(), rf = r.cast<float>();

    Matrix<double> od(3, n), gxd(3, n), td(3, n);
    Matrix<float> of(3, n), gxf(3, n), tfo(3, n);
    d.forward(x, t, r, labels, od);
    f.forward(xf, tf, rf, labels, of);
    CHECK(rel(of, od) < 1e-5);
    d.tangent(v, 1.0, 0.5, td);
    f.tangent(vf, 1.0, 0.5, tfo);
    CHECK(rel(tfo, td) < 1e-4);
    d.backward(g, gxd);
    f.backward(gf, gxf);
    CHECK(rel(gxf, gxd) < 1e-4);
    const Matrix<double> grad_d = d.gradients();
    CHECK(rel(Matrix<float>(f.gradients()), grad_d) < 1e-4);

    d(x, 0.3, 0.7, labels, od);
    f(xf, 0.3, 0.7, labels, of);
    CHECK(rel(of, od) < 1e-5);
    d.jvp(x, 0.4, v, td);
    f.jvp(xf, 0.4, vf, tfo);
    CHECK(rel(tfo, td) < 1e-4);
}

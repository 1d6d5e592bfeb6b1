#pragma once
// nn::gemm: every matrix product of nn::MLP and nn::Linear goes through here, so the library can
// run them on the fastest GEMM the machine has (docs/architecture.md, "GEMM backend").
//
// Default: Eigen's own kernels (header-only, nothing to link). With FMD_GEMM_DNNL defined (CMake
// target fmd::dnnl, Debian's libdnnl-dev) float products call oneDNN's dnnl_sgemm, which dispatches
// AVX-512 / AVX2 kernels at run time; measured on the project's Zen 5 machine: 213 GFLOP/s against
// Eigen's 151 at 512×512×1000 on one core (bash benchmarks/compare/run.sh prints both). double
// products stay on Eigen. oneDNN threads through OpenMP: OMP_NUM_THREADS or omp_set_num_threads().
//
// Every translation unit of a program must agree on FMD_GEMM_DNNL (it changes inline functions).
#include <string_view>
#include <type_traits>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

#ifdef FMD_GEMM_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace fmd::nn {

/// Whether an operand enters a product as stored or transposed.
enum class Op : bool {
    none = false,       ///< op(A) = A
    transpose = true,   ///< op(A) = Aᵀ
};

/// Name of the backend the float products use: "eigen" or "onednn".
constexpr std::string_view gemm_backend() {
#ifdef FMD_GEMM_DNNL
    return "onednn";
#else
    return "eigen";
#endif
}

namespace gemm_detail {

template <class S, class L, class R>
void eigen_gemm(S alpha, const L& a, const R& b, S beta, Out<S> c) {
    if (beta == S(0)) {
        if (alpha == S(1)) c.noalias() = a * b;
        else c.noalias() = alpha * (a * b);
    } else {
        if (beta != S(1)) c *= beta;
        if (alpha == S(1)) c.noalias() += a * b;
        else c.noalias() += alpha * (a * b);
    }
}

}  // namespace gemm_detail

/// C ← α·op(A)·op(B) + β·C (β = 0: C is only written, its old contents may be anything).
/// Shapes must agree (op(A): m × k, op(B): k × n, C: m × n); C must not alias A or B.
template <class S>
void gemm(In<S> a, Op op_a, In<S> b, Op op_b, Out<S> c, S alpha = S(1), S beta = S(0)) {
    const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
    const Eigen::Index m = ta ? a.cols() : a.rows(), k = ta ? a.rows() : a.cols();
    const Eigen::Index kb = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
    if (k != kb || c.rows() != m || c.cols() != n)
        fmd::detail::fail("nn::gemm", "c", "op(a) is ", m, " x ", k, ", op(b) is ", kb, " x ", n, ", c is ", c.rows(), " x ", c.cols());
#ifdef FMD_GEMM_DNNL
    if constexpr (std::is_same_v<S, float>) {
        if (m > 0 && n > 0 && k > 0) {
            // oneDNN is row-major: the column-major C (m × n) is the row-major Cᵀ = op(B)ᵀ op(A)ᵀ.
            const dnnl_status_t st = dnnl_sgemm(tb ? 'T' : 'N', ta ? 'T' : 'N', n, m, k, alpha, b.data(), b.outerStride(),
                                                a.data(), a.outerStride(), beta, c.data(), c.outerStride());
            if (st != dnnl_success) fmd::detail::fail("nn::gemm", "c", "oneDNN's dnnl_sgemm failed with status ", static_cast<int>(st));
            return;
        }
    }
#endif
    if (ta && tb) gemm_detail::eigen_gemm<S>(alpha, a.transpose(), b.transpose(), beta, c);
    else if (ta) gemm_detail::eigen_gemm<S>(alpha, a.transpose(), b, beta, c);
    else if (tb) gemm_detail::eigen_gemm<S>(alpha, a, b.transpose(), beta, c);
    else gemm_detail::eigen_gemm<S>(alpha, a, b, beta, c);
}

/// C ← α·A·B + β·C: gemm without transposes.
template <class S>
void gemm(In<S> a, In<S> b, Out<S> c, S alpha = S(1), S beta = S(0)) {
    gemm<S>(a, Op::none, b, Op::none, c, alpha, beta);
}

}  // namespace fmd::nn

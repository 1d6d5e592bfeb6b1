#pragma once
// nn::gemm: every matrix product of nn::MLP and nn::Linear goes through here, so the library can
// run them on the fastest GEMM the machine has (docs/architecture.md, "GEMM backend").
//
// Default: Eigen's own kernels (header-only, nothing to link). With FMD_GEMM_DNNL defined (CMake
// target fmd::dnnl, Debian's libdnnl-dev) float products run on oneDNN (dnnl_sgemm, or a cached
// matmul primitive for transposed operands), which picks AVX-512 / AVX2 kernels at run time.
// Measured on the project's Zen 5 machine: 213 GFLOP/s against Eigen's 151 at 512×512×1000 on one
// core (bash benchmarks/compare/run.sh prints both). double products stay on Eigen. oneDNN threads through OpenMP: OMP_NUM_THREADS or omp_set_num_threads().
//
// Every translation unit of a program must agree on FMD_GEMM_DNNL (it changes inline functions).
#include <algorithm>
#include <string_view>
#include <type_traits>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

#ifdef FMD_GEMM_DNNL
#include <omp.h>

#include <array>
#include <cstddef>
#include <functional>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>
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

#ifdef FMD_GEMM_DNNL
// oneDNN's matmul primitive, cached per shape: measured faster than its dnnl_sgemm for the
// transposed products of the backward pass (512×512 by 512×64, input gradient: 191 against 171
// GFLOP/s on one core, 269 against 176 on two). oneDNN is row-major, so the column-major
// C (m × n) = op(A) op(B) is computed as Cᵀ (n × m) = op(B)ᵀ op(A)ᵀ, every operand described by
// its strides (no copies). Primitives are made on the first product of a shape and thread count
// (then reused); each calling thread has its own cache. oneDNN still takes a few small heap blocks
// per execution for its own bookkeeping (the Eigen path takes none; tests/dnnl/no_allocation.cpp).
struct DnnlKey {
    bool ta, tb, accumulate;
    Eigen::Index m, n, k, lda, ldb, ldc;
    int threads;
    bool operator==(const DnnlKey&) const = default;
};

struct DnnlKeyHash {
    std::size_t operator()(const DnnlKey& key) const {
        std::size_t h = std::hash<int>{}(key.threads * 8 + key.ta * 4 + key.tb * 2 + key.accumulate);
        for (Eigen::Index v : {key.m, key.n, key.k, key.lda, key.ldb, key.ldc}) h = h * 1000003u ^ std::hash<Eigen::Index>{}(v);
        return h;
    }
};

struct DnnlGemm {
    dnnl::matmul op;
    dnnl::memory src, weights, dst;  // data handles set per call
    std::array<dnnl_exec_arg_t, 3> args;
};

inline dnnl::engine& dnnl_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

inline DnnlGemm& dnnl_plan(const DnnlKey& key) {
    thread_local std::unordered_map<DnnlKey, DnnlGemm, DnnlKeyHash> cache;
    if (const auto it = cache.find(key); it != cache.end()) return it->second;
    if (cache.size() >= 256) cache.clear();  // many shapes: start over rather than grow without bound
    using dt = dnnl::memory::data_type;
    using dims = dnnl::memory::dims;
    // src = op(B)ᵀ (n × k), weights = op(A)ᵀ (k × m), dst = Cᵀ (n × m).
    const dnnl::memory::desc src(dims{key.n, key.k}, dt::f32, key.tb ? dims{1, key.ldb} : dims{key.ldb, 1});
    const dnnl::memory::desc weights(dims{key.k, key.m}, dt::f32, key.ta ? dims{1, key.lda} : dims{key.lda, 1});
    const dnnl::memory::desc dst(dims{key.n, key.m}, dt::f32, dims{key.ldc, 1});
    dnnl::primitive_attr attr;
    if (key.accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
    }
    DnnlGemm g{dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, dnnl_engine())),
               dnnl::memory(src, dnnl_engine(), DNNL_MEMORY_NONE), dnnl::memory(weights, dnnl_engine(), DNNL_MEMORY_NONE),
               dnnl::memory(dst, dnnl_engine(), DNNL_MEMORY_NONE), {}};
    g.args = {dnnl_exec_arg_t{DNNL_ARG_SRC, g.src.get()}, dnnl_exec_arg_t{DNNL_ARG_WEIGHTS, g.weights.get()},
              dnnl_exec_arg_t{DNNL_ARG_DST, g.dst.get()}};
    return cache.emplace(key, std::move(g)).first->second;
}

// C ← op(A) op(B) (+ C when accumulate) through a cached matmul; false (C untouched) when oneDNN
// offers no matmul for these operands.
inline bool dnnl_matmul(bool ta, bool tb, Eigen::Index m, Eigen::Index n, Eigen::Index k, const float* a, Eigen::Index lda,
                        const float* b, Eigen::Index ldb, float* c, Eigen::Index ldc, bool accumulate) {
    thread_local dnnl::stream stream(dnnl_engine());
    DnnlGemm* g = nullptr;
    try {
        g = &dnnl_plan({ta, tb, accumulate, m, n, k, lda, ldb, ldc, omp_get_max_threads()});
    } catch (const dnnl::error&) {
        return false;
    }
    // The C API: the argument table is built once, not per call.
    if (dnnl_memory_set_data_handle(g->src.get(), const_cast<float*>(b)) != dnnl_success ||
        dnnl_memory_set_data_handle(g->weights.get(), const_cast<float*>(a)) != dnnl_success ||
        dnnl_memory_set_data_handle(g->dst.get(), c) != dnnl_success ||
        dnnl_primitive_execute(g->op.get(), stream.get(), static_cast<int>(g->args.size()), g->args.data()) != dnnl_success ||
        dnnl_stream_wait(stream.get()) != dnnl_success)
        fmd::detail::fail("nn::gemm", "c", "oneDNN's matmul failed (", m, " x ", n, " x ", k, ")");
    return true;
}
#endif

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
            // Transposed products (the backward pass) through the cached matmul, plain ones through
            // sgemm: measured the faster of the two for each (plain 512×512×64: sgemm 215, matmul 192
            // GFLOP/s on one core); thin products (the 2-row input and output layers) stay on sgemm.
            if ((ta || tb) && alpha == 1.0f && (beta == 0.0f || beta == 1.0f) && std::min({m, n, k}) >= 16 &&
                gemm_detail::dnnl_matmul(ta, tb, m, n, k, a.data(), a.outerStride(), b.data(), b.outerStride(), c.data(), c.outerStride(),
                                         beta == 1.0f))
                return;
            // Other α, β (the tangent pass's scaled products) and anything the matmul refused: oneDNN's
            // sgemm. Row-major again: the column-major C (m × n) is the row-major Cᵀ = op(B)ᵀ op(A)ᵀ.
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

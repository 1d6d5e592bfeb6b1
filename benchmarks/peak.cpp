// The machine's limit, for benchmarks/compare/run.sh: peak float32 FMA throughput (independent
// register-resident FMA chains, the widest vectors the CPU has) and the best sgemm of every GEMM
// library Debian offers, at the notebook MLP's hidden-layer shape 512x512 times 512xN.
//
//   fmd_peak [--threads T]     prints "key value" lines:
//     fma_peak_gflops X            T threads, each running 16 independent FMA chains
//     sgemm_<lib>_512x512x<N>_gflops X   lib = eigen, onednn, openblas, blis (those present)
//     bf16_onednn_512x512x<N>_gflops X   oneDNN's bfloat16 matmul (float32 accumulation)
//     openblas_core NAME, blis_arch NAME, onednn_isa NAME, fmd_gemm_backend NAME
//
// OpenBLAS and BLIS are opened with dlopen (both define cblas_sgemm). OpenBLAS reads
// OPENBLAS_CORETYPE when it loads and BLIS reads BLIS_ARCH_TYPE: the driver sets these per process
// (Debian's BLIS 0.9 does not know Zen 5 and picks its generic kernels unless told skx).
#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <Eigen/Core>

#include <fmd/nn/gemm.hpp>

#ifdef FMD_GEMM_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using Clock = std::chrono::steady_clock;
constexpr int chains = 16;  // > FMA latency x pipes (4 x 2 on current cores): the units never wait

// The two loops are spelled out (not one template over the vector type): vectors passed between
// functions of different target attributes would change the calling convention.
__attribute__((target("avx512f"))) float run512(long iters) {
    __m512 acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; ++i)
#pragma GCC unroll 16
        for (int k = 0; k < chains; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    alignas(64) float lanes[16];
    float sum = 0;
    for (int k = 0; k < chains; ++k) {
        _mm512_store_ps(lanes, acc[k]);
        sum += lanes[0];
    }
    return sum;
}

__attribute__((target("avx2,fma"))) float run256(long iters) {
    __m256 acc[chains];
    for (int k = 0; k < chains; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; ++i)
#pragma GCC unroll 16
        for (int k = 0; k < chains; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
    alignas(32) float lanes[8];
    float sum = 0;
    for (int k = 0; k < chains; ++k) {
        _mm256_store_ps(lanes, acc[k]);
        sum += lanes[0];
    }
    return sum;
}

// Best of 5 runs of `threads` threads, each running the chains: GFLOP/s.
double fma_peak(int threads) {
    const bool wide = __builtin_cpu_supports("avx512f");
    const long iters = 20'000'000;
    const double flops_per_iter = 2.0 * chains * (wide ? 16 : 8);
    double best = 0;
    float sink = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += wide ? run512(iters) : run256(iters);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        best = std::max(best, flops_per_iter * static_cast<double>(iters) * threads / s * 1e-9);
    }
    if (sink == 1.2345f) std::puts("");  // keeps the chains alive
    return best;
}

// Median GFLOP/s of a 512x512 x 512xn product over 7 timed batches.
template <class F>
double gemm_gflops(F&& f, long n) {
    for (int i = 0; i < 5; ++i) f();
    std::vector<double> s;
    for (int r = 0; r < 7; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < 40; ++i) f();
        s.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / 40);
    }
    std::sort(s.begin(), s.end());
    return 2.0 * 512 * 512 * static_cast<double>(n) / s[3] * 1e-9;
}

using cblas_sgemm_t = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
constexpr int col_major = 102, no_trans = 111;

}  // namespace

int main(int argc, char** argv) {
    int threads = 1;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--threads") threads = std::max(1, std::atoi(argv[i + 1]));
    omp_set_num_threads(threads);
    Eigen::setNbThreads(threads);
    std::printf("threads %d\nfmd_gemm_backend %s\n", threads, std::string(fmd::nn::gemm_backend()).c_str());
    std::printf("fma_peak_gflops %.1f\nfma_vector_bits %d\n", fma_peak(threads), __builtin_cpu_supports("avx512f") ? 512 : 256);

    void* openblas = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    void* blis = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    cblas_sgemm_t openblas_sgemm = nullptr, blis_sgemm = nullptr;
    if (openblas != nullptr) {
        openblas_sgemm = reinterpret_cast<cblas_sgemm_t>(dlsym(openblas, "cblas_sgemm"));
        if (auto set = reinterpret_cast<void (*)(int)>(dlsym(openblas, "openblas_set_num_threads"))) set(threads);
        if (auto core = reinterpret_cast<char* (*)()>(dlsym(openblas, "openblas_get_corename"))) std::printf("openblas_core %s\n", core());
    }
    if (blis != nullptr) {
        blis_sgemm = reinterpret_cast<cblas_sgemm_t>(dlsym(blis, "cblas_sgemm"));
        if (auto set = reinterpret_cast<void (*)(long)>(dlsym(blis, "bli_thread_set_num_threads"))) set(threads);
        auto id = reinterpret_cast<int (*)()>(dlsym(blis, "bli_arch_query_id"));
        auto name = reinterpret_cast<const char* (*)(int)>(dlsym(blis, "bli_arch_string"));
        if (id != nullptr && name != nullptr) std::printf("blis_arch %s\n", name(id()));
    }
#ifdef FMD_GEMM_DNNL
    {
        static const char* const isa[] = {"all", "sse41", "avx", "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16"};
        const auto v = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
        std::string name = "other";
        const unsigned bits[] = {dnnl_cpu_isa_all, dnnl_cpu_isa_sse41, dnnl_cpu_isa_avx, dnnl_cpu_isa_avx2, dnnl_cpu_isa_avx512_core,
                                 dnnl_cpu_isa_avx512_core_vnni, dnnl_cpu_isa_avx512_core_bf16};
        for (int i = 0; i < 7; ++i)
            if (v == bits[i]) name = isa[i];
        std::printf("onednn_isa %s\n", name.c_str());
    }
#endif

    for (long n : {64L, 256L, 1000L}) {
        const Eigen::MatrixXf a = Eigen::MatrixXf::Random(512, 512), b = Eigen::MatrixXf::Random(512, n);
        Eigen::MatrixXf c(512, n);
        const int ni = static_cast<int>(n);
        std::printf("sgemm_eigen_512x512x%ld_gflops %.1f\n", n, gemm_gflops([&] { c.noalias() = a * b; }, n));
#ifdef FMD_GEMM_DNNL
        std::printf("sgemm_onednn_512x512x%ld_gflops %.1f\n", n, gemm_gflops([&] { fmd::nn::gemm<float>(a, b, c); }, n));
        {
            using namespace dnnl;
            engine eng(engine::kind::cpu, 0);
            stream s(eng);
            const memory::desc src({n, 512}, memory::data_type::bf16, memory::format_tag::ab),
                wei({512, 512}, memory::data_type::bf16, memory::format_tag::ab), dst({n, 512}, memory::data_type::f32, memory::format_tag::ab);
            matmul mm(matmul::primitive_desc(matmul::desc(src, wei, dst), eng));
            memory ms(src, eng), mw(wei, eng), md(dst, eng);
            std::fill_n(static_cast<unsigned short*>(ms.get_data_handle()), n * 512, 0x3f80);  // bf16 1.0
            std::fill_n(static_cast<unsigned short*>(mw.get_data_handle()), 512 * 512, 0x3c00);
            const double g = gemm_gflops([&] { mm.execute(s, {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}}); s.wait(); }, n);
            std::printf("bf16_onednn_512x512x%ld_gflops %.1f\n", n, g);
        }
#endif
        if (openblas_sgemm != nullptr)
            std::printf("sgemm_openblas_512x512x%ld_gflops %.1f\n", n, gemm_gflops([&] {
                openblas_sgemm(col_major, no_trans, no_trans, 512, ni, 512, 1.0f, a.data(), 512, b.data(), 512, 0.0f, c.data(), 512); }, n));
        if (blis_sgemm != nullptr)
            std::printf("sgemm_blis_512x512x%ld_gflops %.1f\n", n, gemm_gflops([&] {
                blis_sgemm(col_major, no_trans, no_trans, 512, ni, 512, 1.0f, a.data(), 512, b.data(), 512, 0.0f, c.data(), 512); }, n));
    }
    return 0;
}

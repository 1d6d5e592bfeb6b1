#pragma once
// fmd::parallel_for / parallel_sum: the library's own element-wise loops (optimizer updates,
// activations) and reductions (the Trainer's checks) on Eigen's thread count, so they scale with
// the matrix products instead of leaving the second core idle between them (docs/architecture.md,
// "Threads"). Without OpenMP (-fopenmp) they are plain loops. In parallel_for each index is handled
// by exactly one thread, so element-wise results are bit-identical for every thread count;
// parallel_sum's total depends on where the ranges split (rounding only).
#include <algorithm>

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fmd {

/// Σ_i f(begin_i, end_i) over consecutive ranges covering [0, n) (f returns a double), split like
/// parallel_for below; the partial sums are added in range order, so the result depends on the
/// thread count only through where the ranges split (one thread: f(0, n) exactly).
template <class F>
double parallel_sum(Eigen::Index n, Eigen::Index grain, F&& f, Eigen::Index align = 1) {
#ifdef _OPENMP
    constexpr int max_threads = 64;  // partial sums live on the stack: nothing is allocated
    const int threads = static_cast<int>(
        std::min<Eigen::Index>({Eigen::nbThreads(), n / std::max<Eigen::Index>(grain, 1), Eigen::Index{max_threads}}));
    if (threads > 1 && !omp_in_parallel()) {
        double partial[max_threads] = {};
        int used = 1;
#pragma omp parallel num_threads(threads)
        {
            const Eigen::Index id = omp_get_thread_num(), count = omp_get_num_threads();
            const Eigen::Index blocks = (n + align - 1) / align;
            const Eigen::Index begin = std::min(n, blocks * id / count * align), end = std::min(n, blocks * (id + 1) / count * align);
            if (begin < end) partial[id] = f(begin, end);
            if (id == 0) used = static_cast<int>(count);
        }
        double sum = 0.0;
        for (int i = 0; i < used; ++i) sum += partial[i];
        return sum;
    }
#else
    (void)grain;
    (void)align;
#endif
    return n > 0 ? f(Eigen::Index{0}, n) : 0.0;
}

/// Calls f(begin_i, end_i) on consecutive ranges covering [0, n), in parallel when n ≥ 2·grain and
/// more than one thread is configured (Eigen::nbThreads()); never nests inside a parallel region.
/// Inner range boundaries are multiples of `align`: a loop that works in blocks of `align` from its
/// range's start then sees the same blocks for any thread count (Eigen vectorizes an unaligned
/// head in scalar code, and its fast float sqrt differs from std::sqrt in the last bit).
template <class F>
void parallel_for(Eigen::Index n, Eigen::Index grain, F&& f, Eigen::Index align = 1) {
    parallel_sum(n, grain, [&](Eigen::Index lo, Eigen::Index hi) {
        f(lo, hi);
        return 0.0;
    }, align);
}

}  // namespace fmd

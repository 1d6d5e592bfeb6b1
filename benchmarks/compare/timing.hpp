#pragma once
// Timing shared by fmd_compare and libtorch_compare: both sides measure the same way.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace compare {

/// Median, fastest and slowest ms per call of the timed runs.
struct Stats {
    double median, min, max;
};

/// ms per call over `reps` timed runs of `iters` calls (after `warm` calls).
template <class F>
Stats time_ms(F&& f, int warm, int iters, int reps) {
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < warm; ++i) f();
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        for (int i = 0; i < iters; ++i) f();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / iters);
    }
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms.front(), ms.back()};
}

/// The driver's "key value" lines: median, and the spread as key_min, key_max.
inline void print(const std::string& key, Stats s) {
    std::printf("%s %.4f\n%s_min %.4f\n%s_max %.4f\n", key.c_str(), s.median, key.c_str(), s.min, key.c_str(), s.max);
}

}  // namespace compare

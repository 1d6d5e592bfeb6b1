#pragma once
// Explicit randomness: every draw takes a generator; same seed => same bits on every platform
// (std::normal_distribution is implementation-defined, so normals are drawn here).
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>

#include <Eigen/Core>

namespace fmd {

/// The library's default generator; any UniformRandomBitGenerator with 64-bit output works.
using Rng = std::mt19937_64;

/// Uniform double in (0, 1) from the top 53 bits; never returns 0 or 1. (The largest draw,
/// (2^53 − 1/2)·2^−53, rounds to 1.0 in double; it is mapped to the largest double below 1.)
template <class G>
double uniform01(G& rng) {
    const std::uint64_t bits = static_cast<std::uint64_t>(rng()) >> 11;
    const double u = (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
    return u < 1.0 ? u : 1.0 - 0x1.0p-53;
}

/// Standard normal draws by Box–Muller, two at a time, cached in the object.
class NormalSampler {
public:
    /// One N(0, 1) draw; every second call returns the cached partner of the previous pair.
    template <class G>
    double operator()(G& rng) {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        const double r = std::sqrt(-2.0 * std::log(uniform01(rng)));
        const double a = 2.0 * std::numbers::pi * uniform01(rng);
        spare_ = r * std::sin(a);
        has_spare_ = true;
        return r * std::cos(a);
    }
    /// Drops the cached draw, so the next call draws a fresh pair from the generator.
    void reset() { has_spare_ = false; }

private:
    double spare_ = 0.0;
    bool has_spare_ = false;
};

/// Fills any Eigen matrix or block with i.i.d. N(0, 1), column by column.
template <class Derived, class G>
void fill_normal(Eigen::DenseBase<Derived>& out, G& rng) {
    using S = typename Derived::Scalar;
    NormalSampler normal;
    for (Eigen::Index j = 0; j < out.cols(); ++j)
        for (Eigen::Index i = 0; i < out.rows(); ++i) out(i, j) = static_cast<S>(normal(rng));
}
/// Overload for temporary blocks such as `x.leftCols(5)`.
template <class Derived, class G>
void fill_normal(Eigen::DenseBase<Derived>&& out, G& rng) {
    fill_normal(out, rng);
}

}  // namespace fmd

#pragma once
// Set-up shared by the test files: the data sets, reference solutions, distances and file
// helpers that several tests build the same way. Only set-up and measurement live here; every
// assertion and tolerance stays in the test that makes it, next to the reasoning behind it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <fmd/fmd.hpp>

namespace fmd_test {

using fmd::Matrix;
using fmd::Vector;

inline constexpr double half_pi = 1.5707963267948966;

// ---------------------------------------------------------------------------------------------
// Errors

/// Matches an fmd::error whose message names `argument` as fmd::detail::fail writes it
/// ("argument '<name>'") and, when `text` is given, also contains `text`.
inline auto names(const std::string& argument, const std::string& text = "") {
    const std::string needle = "argument '" + argument + "'";
    return Catch::Predicate<fmd::error>(
        [needle, text](const fmd::error& e) {
            const std::string what = e.what();
            return what.find(needle) != std::string::npos && what.find(text) != std::string::npos;
        },
        "fmd::error naming " + needle + (text.empty() ? "" : " and containing \"" + text + "\""));
}

/// The same check for a string-literal argument name as two assertions: the type, then the
/// message (expr runs twice).
#define CHECK_THROWS_NAMING(expr, argument)                                  \
    do {                                                                     \
        CHECK_THROWS_AS(expr, fmd::error);                                   \
        CHECK_THROWS_WITH(expr, Catch::Contains("argument '" argument "'")); \
    } while (false)

// ---------------------------------------------------------------------------------------------
// Data

/// Three components in 2-D with unequal weights (0.5, 0.3, 0.2) and standard deviations
/// 0.3, 0.6, 1: unequal on purpose, so a formula that ignores a weight or a width shows.
template <class S = double>
fmd::GaussianMixture<S> three_component_mixture() {
    Matrix<S> mu(2, 3);
    mu << -2.0, 0.5, 1.5,  //
        1.0, -1.5, 2.0;
    Vector<S> sd(3), w(3);
    sd << 0.3, 0.6, 1.0;
    w << 5, 3, 2;
    return {mu, sd, w};
}

/// Three unequal, well separated components in 2-D: the training data of the trainer tests,
/// small enough that a short run learns it.
template <class S>
fmd::GaussianMixture<S> separated_blobs() {
    Matrix<S> mu(2, 3);
    mu << S(-2.0), S(2.0), S(0.5),  //
        S(-1.0), S(-1.0), S(2.0);
    Vector<S> sd(3), w(3);
    sd << S(0.3), S(0.4), S(0.25);
    w << 2, 3, 5;
    return {mu, sd, w};
}

/// rows x cols standard normal entries drawn from rng.
template <class S = double>
Matrix<S> normal(Eigen::Index rows, Eigen::Index cols, fmd::Rng& rng) {
    Matrix<S> m(rows, cols);
    fmd::fill_normal(m, rng);
    return m;
}

/// 2 x n draws of N(0, I) from a generator of its own: the start X_0 of the sampler tests.
inline Matrix<double> normal_batch(Eigen::Index n, std::uint64_t seed) {
    fmd::Rng rng(seed);
    return normal(2, n, rng);
}

// ---------------------------------------------------------------------------------------------
// Measurements

template <class A, class B>
double max_abs_diff(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
    return (a.template cast<double>() - b.template cast<double>()).cwiseAbs().maxCoeff();
}
template <class A>
double max_abs(const Eigen::MatrixBase<A>& a) {
    return a.template cast<double>().cwiseAbs().maxCoeff();
}

/// ‖a − b‖∞ / ‖b‖∞ (or / 1 when b = 0): the tensor-wise relative error of the gradient checks.
inline double rel_err(const Eigen::Ref<const Matrix<double>>& a, const Eigen::Ref<const Matrix<double>>& b) {
    const double scale = b.cwiseAbs().maxCoeff();
    return (a - b).cwiseAbs().maxCoeff() / (scale > 0 ? scale : 1.0);
}

/// Least-squares slope of log(error) against log(h), h = 1/n: the measured global order.
inline double fitted_order(const std::vector<long>& ns, const std::vector<double>& errors) {
    const auto m = static_cast<double>(ns.size());
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < ns.size(); ++i) {
        mx += std::log(1.0 / static_cast<double>(ns[i])) / m;
        my += std::log(errors[i]) / m;
    }
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < ns.size(); ++i) {
        const double dx = std::log(1.0 / static_cast<double>(ns[i])) - mx;
        sxy += dx * (std::log(errors[i]) - my);
        sxx += dx * dx;
    }
    return sxy / sxx;
}

/// Reference solution of the order tests: the exact velocity of ring(8, 3, 0.5) under `path`
/// (theory.md §8.1) integrated from x0 over [t0, t1] by RK4 with 4096 steps. Its error is
/// ≈ 1e-13 (it differs from RK4-8192 by 2e-13), far below every error it is compared with.
template <class Path>
Matrix<double> rk4_reference(const Path& path, const Matrix<double>& x0, double t0 = 0.0, double t1 = 1.0) {
    fmd::MixtureOracle oracle(path, fmd::GaussianMixture<double>::ring(8, 3.0, 0.5));
    auto u = oracle.velocity_field();
    Matrix<double> x = x0;
    fmd::solver::RK4<double> rk4;
    fmd::integrate(u, x, fmd::grid::uniform(4096, t0, t1), rk4);
    return x;
}

/// Sliced Wasserstein-2 (metrics::sliced_wasserstein) with fixed directions: a fresh generator
/// seeded `seed` each call, so every comparison projects on the same directions and differences
/// between calls come from the samples alone.
template <class A, class B>
double sliced_w2(const A& a, const B& b, int projections = 64, std::uint64_t seed = 5) {
    fmd::Rng rng(seed);
    return fmd::metrics::sliced_wasserstein(a, b, projections, rng);
}

/// The "samples reproduce the mixture" protocol of tests/solver/solvers.cpp (its reasoning and
/// measured false-alarm rate are there): a single SW2 value fluctuates by a factor ~3 between
/// seeds, so both sides are averaged.
///   floor()       = RMS of SW2 over 16 pairs of independent true batches (drawn on construction),
///   statistic(x)  = RMS of SW2 of each `batch`-column block of x against a fresh true batch.
/// `sw2_squared(a, b)` is the squared distance used; true batches come from mix with a generator
/// seeded `truth_seed`.
template <class Sw2Squared>
class MixtureMatch {
public:
    MixtureMatch(const fmd::GaussianMixture<double>& mix, Eigen::Index batch, std::uint64_t truth_seed, Sw2Squared sw2_squared)
        : mix_(mix), batch_(batch), truth_rng_(truth_seed), sw2_squared_(std::move(sw2_squared)) {
        double floor2 = 0;
        for (int p = 0; p < 16; ++p) floor2 += sw2_squared_(true_batch(), true_batch()) / 16;
        floor_ = std::sqrt(floor2);
    }

    double floor() const { return floor_; }

    double statistic(const Matrix<double>& x) {
        double acc = 0;
        const auto blocks = x.cols() / batch_;
        for (Eigen::Index b = 0; b < blocks; ++b) acc += sw2_squared_(x.middleCols(b * batch_, batch_), true_batch());
        return std::sqrt(acc / static_cast<double>(blocks));
    }

private:
    Matrix<double> true_batch() {
        Matrix<double> z(2, batch_);
        mix_.sample(z, truth_rng_);
        return z;
    }

    fmd::GaussianMixture<double> mix_;
    Eigen::Index batch_;
    fmd::Rng truth_rng_;
    Sw2Squared sw2_squared_;
    double floor_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Files

/// A fresh folder under the system temp directory (prefix_<pid>_<counter>), removed with
/// everything in it.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "fmd_tests") {
        static int counter = 0;
        dir_ = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (dir_ / name).string(); }

private:
    std::filesystem::path dir_;
};

inline std::vector<char> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
inline void write_bytes(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace fmd_test

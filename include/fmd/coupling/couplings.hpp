#pragma once
// Minibatch couplings of noise and data (theory.md §9.1): which noise column each data column is
// trained against. The trainer draws a pool of noise (pool_size(B) columns, B the batch) and the
// coupling writes the B noise columns paired with the data columns, in the data's order.
//
//   Independent   today's CFM: the first B draws, unchanged (no extra work, the default).
//   ExactOT       the optimal assignment for the squared Euclidean cost (coupling/assignment.hpp):
//                 every data column gets a distinct noise column, so each noise draw is used at
//                 most once and, with pool_factor = 1, exactly once.
//   Sinkhorn      entropic OT in the log domain with regularization ε; for every data column j a
//                 noise column is drawn from the plan's conditional π(· | j): the data side is
//                 used exactly once, noise columns may repeat (never the data, unlike sampling
//                 pairs from the flattened plan).
//
// Options shared by ExactOT and Sinkhorn:
//   pool_factor k ≥ 1   solve over k·B noise draws and keep the B matched ones. Bias: the kept noise
//                       is selected towards the data, so its law is no longer N(0, I) while sampling
//                       still starts from N(0, I); the mismatch grows with k (k ≤ 2 keeps it small).
//   labels              with labelled data, noise is paired only within a class (cost +∞ across
//                       classes): the batch splits by label, class c gets k·n_c consecutive pool
//                       columns and is solved on its own, so guided models keep their classes.
//
// Coupling concept (docs/concepts.md):
//   Index pool_size(Index batch) const;
//   template <class S, class G> void couple(const Matrix<S>& pool, const Matrix<S>& z, std::span<const int> labels,
//                                           Matrix<S>& eps, G& rng);   (labels empty when unlabelled)
// Workspaces are sized on the first call: no allocation per step afterwards.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/coupling/assignment.hpp>

namespace fmd::coupling {

/// The coupling concept.
template <class C, class S>
concept Coupling = requires(const C& cc, C& c, Eigen::Index b, const Matrix<S>& pool, const Matrix<S>& z, std::span<const int> labels,
                            Matrix<S>& eps, Rng& rng) {
    { cc.pool_size(b) } -> std::convertible_to<Eigen::Index>;
    c.couple(pool, z, labels, eps, rng);
};

/// Independent pairs: eps = the first B pool columns.
struct Independent {
    /// Noise columns wanted per batch of `batch` data columns: `batch`.
    Eigen::Index pool_size(Eigen::Index batch) const { return batch; }
    /// eps = the first z.cols() columns of `pool` (d × pool_size(B)); `z` is the d × B data batch.
    template <class S, class Z, class G>
    void couple(const Matrix<S>& pool, const Z& z, std::span<const int>, Matrix<S>& eps, G&) {
        eps = pool.leftCols(z.cols());
    }
};

namespace detail {
/// Squared Euclidean costs C(i, j) = ‖noise_i − z_j‖² (in double) of a noise block against a data block.
template <class A, class B>
void squared_distances(const A& noise, const B& z, Eigen::Ref<Matrix<double>> cost) {
    cost.noalias() = -2.0 * noise.transpose().template cast<double>() * z.template cast<double>();
    for (Eigen::Index j = 0; j < z.cols(); ++j) cost.col(j).array() += z.col(j).template cast<double>().squaredNorm();
    for (Eigen::Index i = 0; i < noise.cols(); ++i) cost.row(i).array() += noise.col(i).template cast<double>().squaredNorm();
    cost = cost.cwiseMax(0.0);  // rounding can make ‖a − a‖² slightly negative
}

template <class S, class Z>
void check_batch(const char* where, const Matrix<S>& pool, const Z& z, const Matrix<S>& eps, Eigen::Index want) {
    if (z.cols() == 0) fmd::detail::fail(where, "z", "must be a non-empty batch");
    if (pool.rows() != z.rows() || pool.cols() != want)
        fmd::detail::fail(where, "pool", "must be ", z.rows(), " x ", want, " (pool_factor x batch), got ", pool.rows(), " x ", pool.cols());
    if (eps.rows() != z.rows() || eps.cols() != z.cols())
        fmd::detail::fail(where, "eps", "must have the shape of 'z' (", z.rows(), " x ", z.cols(), "), got ", eps.rows(), " x ", eps.cols());
    if (!pool.allFinite()) fmd::detail::fail(where, "pool", "contains a non-finite value (NaN or Inf)");
    if (!z.allFinite()) fmd::detail::fail(where, "z", "contains a non-finite value (NaN or Inf)");
}

/// The cost matrix of a noise block against (a gathered subset of) the data, in buffers that grow
/// to the largest block seen.
template <class S>
struct CostWorkspace {
    std::vector<double> buffer;
    Matrix<S> gathered;
    template <class Z>
    Eigen::Map<Matrix<double>> costs(const Z& z, const Matrix<S>& pool, Eigen::Index first, Eigen::Index m, std::span<const int> cols,
                                     Eigen::Index n) {
        if (static_cast<Eigen::Index>(buffer.size()) < m * n) buffer.resize(static_cast<std::size_t>(m * n));
        Eigen::Map<Matrix<double>> cost(buffer.data(), m, n);
        const auto noise = pool.middleCols(first, m);
        if (cols.empty()) {
            squared_distances(noise, z, cost);
        } else {
            if (gathered.rows() != z.rows() || gathered.cols() < n) gathered.resize(z.rows(), std::max(n, z.cols()));
            for (Eigen::Index j = 0; j < n; ++j) gathered.col(j) = z.col(cols[static_cast<std::size_t>(j)]);
            squared_distances(noise, gathered.leftCols(n), cost);
        }
        return cost;
    }
};

/// Splits a batch by label (stable) and runs solve(noise_block, data_block, data_columns) per class,
/// or once for everything when unlabelled. Sizes its index buffers once.
struct ClassBlocks {
    std::vector<int> order, starts, classes;
    std::vector<std::int64_t> counts;

    template <class Fn>
    void run(std::span<const int> labels, Eigen::Index batch, Eigen::Index factor, const char* where, Fn&& solve) {
        if (labels.empty()) {
            solve(Eigen::Index(0), batch * factor, std::span<const int>(), batch);
            return;
        }
        if (static_cast<Eigen::Index>(labels.size()) != batch)
            fmd::detail::fail(where, "labels", "must hold one label per data column (", batch, "), got ", labels.size());
        int top = 0;
        for (int y : labels) {
            if (y < 0) fmd::detail::fail(where, "labels", "must be >= 0, got ", y);
            top = std::max(top, y);
        }
        counts.assign(static_cast<std::size_t>(top) + 1, 0);  // reuses its capacity after the first batch
        for (int y : labels) ++counts[static_cast<std::size_t>(y)];
        order.resize(labels.size());
        starts.resize(counts.size() + 1);
        starts[0] = 0;
        for (std::size_t c = 0; c < counts.size(); ++c) starts[c + 1] = starts[c] + static_cast<int>(counts[c]);
        classes.assign(starts.begin(), starts.end() - 1);  // fill cursor per class
        for (std::size_t j = 0; j < labels.size(); ++j) order[static_cast<std::size_t>(classes[static_cast<std::size_t>(labels[j])]++)] = static_cast<int>(j);
        for (std::size_t c = 0; c < counts.size(); ++c) {
            const Eigen::Index n = counts[c];
            if (n == 0) continue;
            const std::span<const int> cols(order.data() + starts[c], static_cast<std::size_t>(n));
            solve(static_cast<Eigen::Index>(starts[c]) * factor, n * factor, cols, n);
        }
    }
};
}  // namespace detail

/// Options of ExactOT.
struct ExactOTOptions {
    Eigen::Index pool_factor = 1;  ///< noise draws per data column (≥ 1)
};

/// Exact minibatch OT: the optimal permutation (or, with a pool, injection) for ‖ε − z‖².
template <class S>
class ExactOT {
public:
    /// Throws fmd::invalid_argument naming 'pool_factor' when it is < 1.
    explicit ExactOT(ExactOTOptions options = {}) : opt_(options) {
        if (opt_.pool_factor < 1) fmd::detail::fail("coupling::ExactOT", "pool_factor", "must be >= 1, got ", opt_.pool_factor);
    }
    /// Noise columns per batch: batch × pool_factor.
    Eigen::Index pool_size(Eigen::Index batch) const { return batch * opt_.pool_factor; }

    /// Writes to eps (d × B) the pool columns assigned to the data columns of `z` by minimizing Σ_j ‖ε_j − z_j‖²
    /// (theory.md §9.1); with labels (one per column, or empty) assignments stay within each class.
    /// Throws fmd::invalid_argument on mismatched shapes or a pool of the wrong size.
    template <class Z, class G>
    void couple(const Matrix<S>& pool, const Z& z, std::span<const int> labels, Matrix<S>& eps, G& /*rng*/) {
        constexpr const char* where = "coupling::ExactOT::couple";
        detail::check_batch(where, pool, z, eps, pool_size(z.cols()));
        last_cost_ = 0;
        blocks_.run(labels, z.cols(), opt_.pool_factor, where, [&](Eigen::Index first, Eigen::Index m, std::span<const int> cols, Eigen::Index n) {
            auto cost = work_.costs(z, pool, first, m, cols, n);
            const std::vector<int>& row = solver_.solve(cost);
            last_cost_ += solver_.total_cost(cost);
            for (Eigen::Index j = 0; j < n; ++j)
                eps.col(cols.empty() ? j : cols[static_cast<std::size_t>(j)]) = pool.col(first + row[static_cast<std::size_t>(j)]);
        });
    }
    /// Σ_j ‖ε_j − z_j‖² of the last coupling.
    double last_cost() const { return last_cost_; }

private:
    ExactOTOptions opt_;
    Assignment solver_;
    detail::ClassBlocks blocks_;
    detail::CostWorkspace<S> work_;
    double last_cost_ = 0;
};

/// Options of Sinkhorn.
struct SinkhornOptions {
    double epsilon = 0.05;          ///< entropic regularization ε (> 0), in the units of the squared distance
    double tolerance = 1e-4;        ///< stop when Σ_i |row marginal_i − 1/m| ≤ tolerance (total mass 1)
    long max_iterations = 10000;    ///< cap; reaching it is an fmd::numerical_error naming 'max_iterations'
    Eigen::Index pool_factor = 1;   ///< noise draws per data column (≥ 1)
};

/// Entropic OT in the log domain (no underflow at small ε): potentials f, g with plan
/// π_ij = exp((f_i + g_j − C_ij)/ε) between uniform marginals; each data column draws its noise
/// column from π(· | j).
template <class S>
class Sinkhorn {
public:
    /// Throws fmd::invalid_argument naming 'epsilon', 'tolerance', 'max_iterations' or 'pool_factor' when out of range.
    explicit Sinkhorn(SinkhornOptions options = {}) : opt_(options) {
        constexpr const char* where = "coupling::Sinkhorn";
        if (!(opt_.epsilon > 0.0) || !std::isfinite(opt_.epsilon)) fmd::detail::fail(where, "epsilon", "must be finite and > 0, got ", opt_.epsilon);
        if (!(opt_.tolerance > 0.0) || !std::isfinite(opt_.tolerance)) fmd::detail::fail(where, "tolerance", "must be finite and > 0, got ", opt_.tolerance);
        if (opt_.max_iterations < 1) fmd::detail::fail(where, "max_iterations", "must be >= 1, got ", opt_.max_iterations);
        if (opt_.pool_factor < 1) fmd::detail::fail(where, "pool_factor", "must be >= 1, got ", opt_.pool_factor);
    }
    /// Noise columns per batch: batch × pool_factor.
    Eigen::Index pool_size(Eigen::Index batch) const { return batch * opt_.pool_factor; }

    /// Writes to eps (d × B) one pool column per data column of `z`, drawn from the entropic plan π(· | j)
    /// (theory.md §9.1); with labels, within each class. Throws fmd::numerical_error naming
    /// 'max_iterations' when Sinkhorn does not converge.
    template <class Z, class G>
    void couple(const Matrix<S>& pool, const Z& z, std::span<const int> labels, Matrix<S>& eps, G& rng) {
        constexpr const char* where = "coupling::Sinkhorn::couple";
        detail::check_batch(where, pool, z, eps, pool_size(z.cols()));
        last_cost_ = 0;
        iterations_ = 0;
        blocks_.run(labels, z.cols(), opt_.pool_factor, where, [&](Eigen::Index first, Eigen::Index m, std::span<const int> cols, Eigen::Index n) {
            auto cost = work_.costs(z, pool, first, m, cols, n);
            solve(cost);
            for (Eigen::Index j = 0; j < n; ++j) {  // draw row i ~ π(i | j) by inversion
                const double gj = g_(j);
                double total = 0;
                for (Eigen::Index i = 0; i < m; ++i) total += std::exp((f_(i) + gj - cost(i, j)) / opt_.epsilon);
                const double target = uniform01(rng) * total;
                double acc = 0;
                Eigen::Index pick = m - 1;
                for (Eigen::Index i = 0; i < m; ++i) {
                    acc += std::exp((f_(i) + gj - cost(i, j)) / opt_.epsilon);
                    if (acc >= target) {
                        pick = i;
                        break;
                    }
                }
                last_cost_ += cost(pick, j);
                eps.col(cols.empty() ? j : cols[static_cast<std::size_t>(j)]) = pool.col(first + pick);
            }
        });
    }

    /// Solves for the potentials of an m x n cost matrix (uniform marginals); returns ⟨π, C⟩, the
    /// plan's transport cost. f() and g() give the potentials; iterations() the sweeps it took.
    /// ε-scaling: the regularization starts at the largest cost and halves down to ε, warm-starting
    /// each level (a handful of sweeps each), which makes small ε converge in hundreds of sweeps
    /// instead of tens of thousands.
    double solve(const Eigen::Ref<const Matrix<double>>& cost) {
        constexpr const char* where = "coupling::Sinkhorn::solve";
        const Eigen::Index m = cost.rows(), n = cost.cols();
        if (m == 0 || n == 0) fmd::detail::fail(where, "cost", "must be non-empty, got ", m, " x ", n);
        if (!cost.allFinite()) fmd::detail::fail(where, "cost", "contains a non-finite value (NaN or Inf)");
        if (f_.size() < m) f_.resize(m);
        if (g_.size() < n) g_.resize(n);
        f_.head(m).setZero();
        g_.head(n).setZero();
        long used = 0;
        for (double level = std::max(cost.maxCoeff(), opt_.epsilon); level > opt_.epsilon; level *= 0.5) {
            const long budget = std::min<long>(opt_.max_iterations - used, 20);
            used += sweeps(cost, level, 1e-2, budget).first;
        }
        const auto [it, err] = sweeps(cost, opt_.epsilon, opt_.tolerance, opt_.max_iterations - used);
        used += it;
        iterations_ += used;
        if (err > opt_.tolerance)
            fmd::detail::fail_numerical(where, "max_iterations", "(", opt_.max_iterations, ") reached with a marginal error of ", err,
                                        " > tolerance ", opt_.tolerance, "; raise epsilon or max_iterations");
        double transport = 0;
        for (Eigen::Index j = 0; j < n; ++j)
            for (Eigen::Index i = 0; i < m; ++i) transport += std::exp((f_(i) + g_(j) - cost(i, j)) / opt_.epsilon) * cost(i, j);
        return transport;
    }
    /// Row potentials f of the last solve (the first m entries are valid).
    const Vector<double>& f() const { return f_; }
    /// Column potentials g of the last solve (the first n entries are valid).
    const Vector<double>& g() const { return g_; }
    /// Sinkhorn sweeps of the last solve() or couple(), summed over its class blocks.
    long iterations() const { return iterations_; }
    /// Σ_j ‖ε_j − z_j‖² of the pairs drawn by the last couple().
    double last_cost() const { return last_cost_; }

private:
    /// Up to `budget` sweeps at regularization eps until the row marginal error is ≤ tol; returns
    /// (sweeps, error). The column update comes last, so column marginals are exact.
    std::pair<long, double> sweeps(const Eigen::Ref<const Matrix<double>>& cost, double eps, double tol, long budget) {
        const Eigen::Index m = cost.rows(), n = cost.cols();
        const double log_a = -std::log(static_cast<double>(m)), log_b = -std::log(static_cast<double>(n)), a = 1.0 / static_cast<double>(m);
        double err = std::numeric_limits<double>::infinity();
        long it = 0;
        while (it < budget) {
            ++it;
            for (Eigen::Index i = 0; i < m; ++i) {  // f_i = ε log a − ε log Σ_j exp((g_j − C_ij)/ε)
                double mx = -std::numeric_limits<double>::infinity();
                for (Eigen::Index j = 0; j < n; ++j) mx = std::max(mx, g_(j) - cost(i, j));
                double s = 0;
                for (Eigen::Index j = 0; j < n; ++j) s += std::exp((g_(j) - cost(i, j) - mx) / eps);
                f_(i) = eps * log_a - (mx + eps * std::log(s));
            }
            for (Eigen::Index j = 0; j < n; ++j) {  // g_j likewise over i
                double mx = -std::numeric_limits<double>::infinity();
                for (Eigen::Index i = 0; i < m; ++i) mx = std::max(mx, f_(i) - cost(i, j));
                double s = 0;
                for (Eigen::Index i = 0; i < m; ++i) s += std::exp((f_(i) - cost(i, j) - mx) / eps);
                g_(j) = eps * log_b - (mx + eps * std::log(s));
            }
            err = 0;  // row marginal error Σ_i |Σ_j π_ij − 1/m|
            for (Eigen::Index i = 0; i < m; ++i) {
                double row = 0;
                for (Eigen::Index j = 0; j < n; ++j) row += std::exp((f_(i) + g_(j) - cost(i, j)) / eps);
                err += std::abs(row - a);
            }
            if (!std::isfinite(err)) fmd::detail::fail_numerical("coupling::Sinkhorn::solve", "epsilon", "= ", eps, " made the potentials non-finite");
            if (err <= tol) break;
        }
        return {it, err};
    }

    SinkhornOptions opt_;
    detail::ClassBlocks blocks_;
    detail::CostWorkspace<S> work_;
    Vector<double> f_, g_;
    double last_cost_ = 0;
    long iterations_ = 0;
};

}  // namespace fmd::coupling

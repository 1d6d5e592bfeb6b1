#pragma once
// The linear assignment problem: given costs C (m x n, m ≥ n, column j = row "data j", row i =
// "noise i"), choose distinct rows π(j) for every column j minimizing Σ_j C(π(j), j) — the exact
// optimal transport plan between two uniform point clouds of equal size (theory.md §9.1), or the
// best n of m noise draws for n data points.
//
// Solved by shortest augmenting paths with dual potentials (the Jonker–Volgenant / Hungarian
// scheme): one Dijkstra-like sweep over the rows per column, O(n²·m) time, exact in floating point
// up to rounding of the cost sums. Workspaces are sized once; solving allocates nothing afterwards.
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

namespace fmd::coupling {

class Assignment {
public:
    /// Solves for the m x n cost matrix (column-major: column j holds the costs of data point j
    /// against every row). Returns, for each column j, its row π(j); rows are distinct.
    /// Costs must be finite (fmd::invalid_argument naming 'cost' otherwise) and m ≥ n.
    const std::vector<int>& solve(const Eigen::Ref<const Matrix<double>>& cost) {
        constexpr const char* where = "coupling::Assignment::solve";
        const Eigen::Index m = cost.rows(), n = cost.cols();
        if (n == 0) detail::fail(where, "cost", "must have at least one column, got ", m, " x ", n);
        if (m < n) detail::fail(where, "cost", "needs at least as many rows (noise) as columns (data), got ", m, " x ", n);
        if (!cost.allFinite()) detail::fail(where, "cost", "contains a non-finite value (NaN or Inf)");
        fit(m, n);
        const double inf = std::numeric_limits<double>::infinity();
        // 1-based indices as in the classic formulation: row index 0 is the virtual start.
        std::fill(u_.begin(), u_.end(), 0.0);
        std::fill(v_.begin(), v_.end(), 0.0);
        std::fill(owner_.begin(), owner_.end(), 0);
        for (Eigen::Index col = 1; col <= n; ++col) {
            owner_[0] = static_cast<int>(col);
            Eigen::Index r0 = 0;
            std::fill(minv_.begin(), minv_.end(), inf);
            std::fill(used_.begin(), used_.end(), char(0));
            do {
                used_[static_cast<std::size_t>(r0)] = 1;
                const Eigen::Index c0 = owner_[static_cast<std::size_t>(r0)];
                const double uc = u_[static_cast<std::size_t>(c0)];
                const double* column = cost.col(c0 - 1).data();
                double delta = inf;
                Eigen::Index r1 = 0;
                for (Eigen::Index r = 1; r <= m; ++r) {
                    const auto rs = static_cast<std::size_t>(r);
                    if (used_[rs]) continue;
                    const double reduced = column[r - 1] - uc - v_[rs];
                    if (reduced < minv_[rs]) {
                        minv_[rs] = reduced;
                        way_[rs] = static_cast<int>(r0);
                    }
                    if (minv_[rs] < delta) {
                        delta = minv_[rs];
                        r1 = r;
                    }
                }
                for (Eigen::Index r = 0; r <= m; ++r) {
                    const auto rs = static_cast<std::size_t>(r);
                    if (used_[rs]) {
                        u_[static_cast<std::size_t>(owner_[rs])] += delta;
                        v_[rs] -= delta;
                    } else {
                        minv_[rs] -= delta;
                    }
                }
                r0 = r1;
            } while (owner_[static_cast<std::size_t>(r0)] != 0);
            do {  // augment along the shortest path
                const Eigen::Index r1 = way_[static_cast<std::size_t>(r0)];
                owner_[static_cast<std::size_t>(r0)] = owner_[static_cast<std::size_t>(r1)];
                r0 = r1;
            } while (r0 != 0);
        }
        for (Eigen::Index r = 1; r <= m; ++r)
            if (owner_[static_cast<std::size_t>(r)] != 0) row_of_[static_cast<std::size_t>(owner_[static_cast<std::size_t>(r)] - 1)] = static_cast<int>(r - 1);
        return row_of_;
    }

    /// Σ_j C(π(j), j) of the last solve.
    double total_cost(const Eigen::Ref<const Matrix<double>>& cost) const {
        double s = 0;
        for (Eigen::Index j = 0; j < cost.cols(); ++j) s += cost(row_of_[static_cast<std::size_t>(j)], j);
        return s;
    }

private:
    void fit(Eigen::Index m, Eigen::Index n) {
        const auto mm = static_cast<std::size_t>(m + 1), nn = static_cast<std::size_t>(n + 1);
        if (u_.size() != nn) u_.assign(nn, 0.0);
        if (v_.size() != mm) {
            v_.assign(mm, 0.0);
            owner_.assign(mm, 0);
            way_.assign(mm, 0);
            minv_.assign(mm, 0.0);
            used_.assign(mm, 0);
        }
        if (row_of_.size() != static_cast<std::size_t>(n)) row_of_.assign(static_cast<std::size_t>(n), -1);
    }
    std::vector<double> u_, v_, minv_;  // potentials of columns (data) and rows (noise); slack
    std::vector<int> owner_, way_, row_of_;  // column owning each row; path; answer
    std::vector<char> used_;
};

}  // namespace fmd::coupling

#pragma once
// The linear assignment problem: given costs C (m x n, m ≥ n, column j = row "data j", row i =
// "noise i"), choose distinct rows π(j) for every column j minimizing Σ_j C(π(j), j) — the exact
// optimal transport plan between two uniform point clouds of equal size (theory.md §9.1), or the
// best n of m noise draws for n data points.
//
// Square problems (m = n, the plain minibatch OT) use Jonker & Volgenant's LAPJV: column reduction,
// reduction transfer and two rounds of augmenting row reduction settle most columns cheaply, then
// shortest augmenting paths (Dijkstra on reduced costs) finish the rest. Rectangular problems
// (a noise pool, m > n) use shortest augmenting paths with dual potentials per column (the
// Hungarian scheme). Both are O(n²·m) in the worst case and exact up to rounding of the cost sums;
// workspaces are sized once, so solving allocates nothing afterwards.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>

namespace fmd::coupling {

/// Exact linear assignment solver (LAPJV for square problems, shortest augmenting paths for m > n);
/// workspaces are kept between calls, so repeated solves of one size allocate nothing.
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
        if (m == n) {
            lapjv(cost);
            return row_of_;
        }
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
    /// LAPJV on an n x n problem; "rows" here are the data columns i of `cost`, "columns" the
    /// noise rows j, so c(i, j) = cost(j, i) is read along the contiguous column i.
    void lapjv(const Eigen::Ref<const Matrix<double>>& cost) {
        const Eigen::Index n = cost.cols();
        const double inf = std::numeric_limits<double>::infinity();
        auto c = [&](Eigen::Index i, Eigen::Index j) { return cost(j, i); };
        std::vector<int>& rowsol = row_of_;  // data i -> noise j
        std::vector<int>& colsol = owner_;   // noise j -> data i (or −1)
        std::vector<double>& v = v_;         // noise prices
        std::vector<int>& matches = way_;
        std::fill(matches.begin(), matches.begin() + n, 0);
        // Column reduction: each noise column to its cheapest data row.
        for (Eigen::Index j = n - 1; j >= 0; --j) {
            double min = c(0, j);
            Eigen::Index imin = 0;
            for (Eigen::Index i = 1; i < n; ++i)
                if (c(i, j) < min) {
                    min = c(i, j);
                    imin = i;
                }
            v[static_cast<std::size_t>(j)] = min;
            const auto im = static_cast<std::size_t>(imin);
            if (++matches[im] == 1) {
                rowsol[im] = static_cast<int>(j);
                colsol[static_cast<std::size_t>(j)] = static_cast<int>(imin);
            } else if (v[static_cast<std::size_t>(j)] < v[static_cast<std::size_t>(rowsol[im])]) {
                const int j1 = rowsol[im];
                rowsol[im] = static_cast<int>(j);
                colsol[static_cast<std::size_t>(j)] = static_cast<int>(imin);
                colsol[static_cast<std::size_t>(j1)] = -1;
            } else {
                colsol[static_cast<std::size_t>(j)] = -1;
            }
        }
        // Reduction transfer.
        std::vector<int>& free_rows = free_;
        Eigen::Index numfree = 0;
        for (Eigen::Index i = 0; i < n; ++i) {
            const auto is = static_cast<std::size_t>(i);
            if (matches[is] == 0) {
                free_rows[static_cast<std::size_t>(numfree++)] = static_cast<int>(i);
            } else if (matches[is] == 1) {
                const Eigen::Index j1 = rowsol[is];
                double min = inf;
                for (Eigen::Index j = 0; j < n; ++j)
                    if (j != j1) min = std::min(min, c(i, j) - v[static_cast<std::size_t>(j)]);
                if (min < inf) v[static_cast<std::size_t>(j1)] -= min;
            }
        }
        // Augmenting row reduction, twice. In floating point a price cut smaller than an ulp leaves
        // two rows trading one column forever; such near-ties count as ties, and each round is
        // capped (rows still free then go to the exact augmentation below).
        for (int loop = 0; loop < 2; ++loop) {
            Eigen::Index k = 0;
            const Eigen::Index previous = numfree;
            numfree = 0;
            long budget = 16 * static_cast<long>(n);
            while (k < previous) {
                if (--budget < 0) {
                    while (k < previous) free_rows[static_cast<std::size_t>(numfree++)] = free_rows[static_cast<std::size_t>(k++)];
                    break;
                }
                const Eigen::Index i = free_rows[static_cast<std::size_t>(k++)];
                double umin = c(i, 0) - v[0], usubmin = inf;
                Eigen::Index j1 = 0, j2 = -1;
                for (Eigen::Index j = 1; j < n; ++j) {
                    const double h = c(i, j) - v[static_cast<std::size_t>(j)];
                    if (h < usubmin) {
                        if (h >= umin) {
                            usubmin = h;
                            j2 = j;
                        } else {
                            usubmin = umin;
                            umin = h;
                            j2 = j1;
                            j1 = j;
                        }
                    }
                }
                Eigen::Index i0 = colsol[static_cast<std::size_t>(j1)];
                if (usubmin - umin <= 1e-12 * (1.0 + std::abs(umin))) umin = usubmin;  // a near-tie is a tie
                if (umin < usubmin) {
                    v[static_cast<std::size_t>(j1)] -= usubmin - umin;
                } else if (i0 >= 0 && j2 >= 0) {  // a tie: take the second column instead
                    j1 = j2;
                    i0 = colsol[static_cast<std::size_t>(j2)];
                }
                rowsol[static_cast<std::size_t>(i)] = static_cast<int>(j1);
                colsol[static_cast<std::size_t>(j1)] = static_cast<int>(i);
                if (i0 >= 0) {
                    if (umin < usubmin)
                        free_rows[static_cast<std::size_t>(--k)] = static_cast<int>(i0);
                    else
                        free_rows[static_cast<std::size_t>(numfree++)] = static_cast<int>(i0);
                }
            }
        }
        // Augmentation: a shortest path from every free row to an unassigned column.
        std::vector<double>& d = minv_;
        std::vector<int>& pred = pred_;
        std::vector<int>& collist = collist_;
        for (Eigen::Index f = 0; f < numfree; ++f) {
            const Eigen::Index freerow = free_rows[static_cast<std::size_t>(f)];
            for (Eigen::Index j = 0; j < n; ++j) {
                d[static_cast<std::size_t>(j)] = c(freerow, j) - v[static_cast<std::size_t>(j)];
                pred[static_cast<std::size_t>(j)] = static_cast<int>(freerow);
                collist[static_cast<std::size_t>(j)] = static_cast<int>(j);
            }
            Eigen::Index low = 0, up = 0, last = 0, endofpath = -1;
            double min = 0;
            bool found = false;
            do {
                if (up == low) {  // the columns at the new minimum distance move to [low, up)
                    last = low - 1;
                    min = d[static_cast<std::size_t>(collist[static_cast<std::size_t>(up++)])];
                    for (Eigen::Index k = up; k < n; ++k) {
                        const int j = collist[static_cast<std::size_t>(k)];
                        const double h = d[static_cast<std::size_t>(j)];
                        if (h <= min) {
                            if (h < min) {
                                up = low;
                                min = h;
                            }
                            collist[static_cast<std::size_t>(k)] = collist[static_cast<std::size_t>(up)];
                            collist[static_cast<std::size_t>(up++)] = j;
                        }
                    }
                    for (Eigen::Index k = low; k < up; ++k)
                        if (colsol[static_cast<std::size_t>(collist[static_cast<std::size_t>(k)])] < 0) {
                            endofpath = collist[static_cast<std::size_t>(k)];
                            found = true;
                            break;
                        }
                }
                if (!found) {  // scan the next column at the minimum
                    const Eigen::Index j1 = collist[static_cast<std::size_t>(low++)];
                    const Eigen::Index i = colsol[static_cast<std::size_t>(j1)];
                    const double h = c(i, j1) - v[static_cast<std::size_t>(j1)] - min;
                    for (Eigen::Index k = up; k < n; ++k) {
                        const int j = collist[static_cast<std::size_t>(k)];
                        const double v2 = c(i, j) - v[static_cast<std::size_t>(j)] - h;
                        if (v2 < d[static_cast<std::size_t>(j)]) {
                            pred[static_cast<std::size_t>(j)] = static_cast<int>(i);
                            if (v2 == min) {
                                if (colsol[static_cast<std::size_t>(j)] < 0) {
                                    endofpath = j;
                                    found = true;
                                    break;
                                }
                                collist[static_cast<std::size_t>(k)] = collist[static_cast<std::size_t>(up)];
                                collist[static_cast<std::size_t>(up++)] = j;
                            }
                            d[static_cast<std::size_t>(j)] = v2;
                        }
                    }
                }
            } while (!found);
            for (Eigen::Index k = 0; k <= last; ++k) {  // update the prices of the scanned columns
                const auto j1 = static_cast<std::size_t>(collist[static_cast<std::size_t>(k)]);
                v[j1] += d[j1] - min;
            }
            Eigen::Index i;
            do {  // flip the alternating path
                i = pred[static_cast<std::size_t>(endofpath)];
                colsol[static_cast<std::size_t>(endofpath)] = static_cast<int>(i);
                const Eigen::Index j1 = endofpath;
                endofpath = rowsol[static_cast<std::size_t>(i)];
                rowsol[static_cast<std::size_t>(i)] = static_cast<int>(j1);
            } while (i != freerow);
        }
    }

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
        if (free_.size() < mm) {
            free_.assign(mm, 0);
            pred_.assign(mm, 0);
            collist_.assign(mm, 0);
        }
    }
    std::vector<double> u_, v_, minv_;  // potentials of columns (data) and rows (noise); slack
    std::vector<int> owner_, way_, row_of_;  // column owning each row; path; answer
    std::vector<int> free_, pred_, collist_;  // LAPJV: free rows, shortest-path tree, column order
    std::vector<char> used_;
};

}  // namespace fmd::coupling

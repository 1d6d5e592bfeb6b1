// Minibatch couplings (theory.md §9.1): the assignment solver is optimal (brute force over all
// permutations for B ≤ 8, ties and duplicate points included; a min-cost-flow reference written
// here for B = 64 and for pools), ExactOT uses every noise column at most once and never pairs
// across classes, Sinkhorn's plan has the right marginals, its cost tends to the exact OT cost as
// ε → 0 and it stays finite at ε = 1e-3 on checkerboard-scaled data; bad inputs are named.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include <fmd/coupling/couplings.hpp>
#include <fmd/data/toy.hpp>

#include "support.hpp"

namespace {

using fmd::Matrix;
using fmd_test::names;

/// min over all injections of columns into rows (m ≥ n, m ≤ 9) by enumeration.
double brute_force(const Matrix<double>& c) {
    const int m = static_cast<int>(c.rows()), n = static_cast<int>(c.cols());
    std::vector<int> rows(static_cast<std::size_t>(m));
    std::iota(rows.begin(), rows.end(), 0);
    double best = std::numeric_limits<double>::infinity();
    do {
        double s = 0;
        for (int j = 0; j < n; ++j) s += c(rows[static_cast<std::size_t>(j)], j);
        best = std::min(best, s);
    } while (std::next_permutation(rows.begin(), rows.end()));
    return best;
}

/// Reference: successive shortest augmenting paths with Bellman–Ford on the residual graph of the
/// bipartite flow network (no potentials, no Dijkstra): a different algorithm, O(n · V · E).
double min_cost_flow(const Matrix<double>& c) {
    const int m = static_cast<int>(c.rows()), n = static_cast<int>(c.cols());
    // Nodes: 0 source, 1..n data, n+1..n+m noise, n+m+1 sink.
    const int nodes = n + m + 2, src = 0, sink = n + m + 1;
    struct Edge {
        int to, rev, cap;
        double cost;
    };
    std::vector<std::vector<Edge>> g(static_cast<std::size_t>(nodes));
    auto add = [&](int a, int b, double w) {
        g[static_cast<std::size_t>(a)].push_back({b, static_cast<int>(g[static_cast<std::size_t>(b)].size()), 1, w});
        g[static_cast<std::size_t>(b)].push_back({a, static_cast<int>(g[static_cast<std::size_t>(a)].size()) - 1, 0, -w});
    };
    for (int j = 0; j < n; ++j) add(src, 1 + j, 0);
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) add(1 + j, n + 1 + i, c(i, j));
    for (int i = 0; i < m; ++i) add(n + 1 + i, sink, 0);
    double total = 0;
    for (int flow = 0; flow < n; ++flow) {
        std::vector<double> dist(static_cast<std::size_t>(nodes), std::numeric_limits<double>::infinity());
        std::vector<int> prev_node(static_cast<std::size_t>(nodes), -1), prev_edge(static_cast<std::size_t>(nodes), -1);
        dist[src] = 0;
        for (int round = 0; round < nodes; ++round) {
            bool changed = false;
            for (int a = 0; a < nodes; ++a) {
                if (dist[static_cast<std::size_t>(a)] == std::numeric_limits<double>::infinity()) continue;
                for (int e = 0; e < static_cast<int>(g[static_cast<std::size_t>(a)].size()); ++e) {
                    const Edge& ed = g[static_cast<std::size_t>(a)][static_cast<std::size_t>(e)];
                    if (ed.cap > 0 && dist[static_cast<std::size_t>(a)] + ed.cost < dist[static_cast<std::size_t>(ed.to)] - 1e-12) {
                        dist[static_cast<std::size_t>(ed.to)] = dist[static_cast<std::size_t>(a)] + ed.cost;
                        prev_node[static_cast<std::size_t>(ed.to)] = a;
                        prev_edge[static_cast<std::size_t>(ed.to)] = e;
                        changed = true;
                    }
                }
            }
            if (!changed) break;
        }
        for (int v = sink; v != src; v = prev_node[static_cast<std::size_t>(v)]) {
            Edge& ed = g[static_cast<std::size_t>(prev_node[static_cast<std::size_t>(v)])][static_cast<std::size_t>(prev_edge[static_cast<std::size_t>(v)])];
            ed.cap -= 1;
            g[static_cast<std::size_t>(v)][static_cast<std::size_t>(ed.rev)].cap += 1;
        }
        total += dist[sink];
    }
    return total;
}

bool is_injection(const std::vector<int>& row, int m) {
    std::set<int> seen(row.begin(), row.end());
    return seen.size() == row.size() && *seen.begin() >= 0 && *seen.rbegin() < m;
}

}  // namespace

TEST_CASE("Assignment: optimal against brute force for B <= 8, with ties and duplicate points", "[coupling]") {
    fmd::Rng rng(1);
    fmd::coupling::Assignment solver;
    int problems = 0;
    for (int n = 1; n <= 8; ++n)
        for (int extra = 0; extra <= (n <= 6 ? 2 : 0); ++extra)
            for (int rep = 0; rep < 12; ++rep) {
                const int m = n + extra;
                Matrix<double> c(m, n);
                if (rep % 3 == 0) {  // small integers: many ties
                    for (Eigen::Index k = 0; k < c.size(); ++k) c.data()[k] = std::floor(4 * fmd::uniform01(rng));
                } else {  // squared distances of 2-D points, some duplicated
                    Matrix<double> noise = fmd_test::normal<double>(2, m, rng), data = fmd_test::normal<double>(2, n, rng);
                    if (rep % 3 == 2 && n > 1) {
                        data.col(1) = data.col(0);
                        noise.col(m - 1) = noise.col(0);
                    }
                    fmd::coupling::detail::squared_distances(noise, data, c);
                }
                const auto& row = solver.solve(c);
                INFO("m " << m << " n " << n << " rep " << rep);
                REQUIRE(is_injection(row, m));
                CHECK(solver.total_cost(c) == Approx(brute_force(c)).epsilon(1e-12).margin(1e-12));
                ++problems;
            }
    CHECK(problems > 150);
}

TEST_CASE("Assignment: equals a min-cost-flow reference for B = 64 and for a pool of 96 x 64", "[coupling]") {
    fmd::Rng rng(2);
    fmd::coupling::Assignment solver;
    for (const int m : {64, 96}) {
        const Matrix<double> noise = fmd_test::normal<double>(2, m, rng), data = 3.0 * fmd_test::normal<double>(2, 64, rng);
        Matrix<double> c(m, 64);
        fmd::coupling::detail::squared_distances(noise, data, c);
        const auto& row = solver.solve(c);
        REQUIRE(is_injection(row, m));
        CHECK(solver.total_cost(c) == Approx(min_cost_flow(c)).epsilon(1e-10));
    }
}

TEST_CASE("ExactOT: a permutation of the noise that minimizes the cost; pools; labelled blocks never cross classes", "[coupling]") {
    using S = double;
    fmd::Rng rng(3);
    const Eigen::Index B = 32;
    Matrix<S> z(2, B);
    fmd::data::Checkerboard{}.sample(z, rng);
    SECTION("pool_factor 1: every noise column used exactly once, cost below independent pairing") {
        fmd::coupling::ExactOT<S> ot;
        const Matrix<S> pool = fmd_test::normal<S>(2, B, rng);
        Matrix<S> eps(2, B);
        ot.couple(pool, z, {}, eps, rng);
        std::vector<int> used;
        for (Eigen::Index j = 0; j < B; ++j)
            for (Eigen::Index i = 0; i < B; ++i)
                if (eps.col(j) == pool.col(i)) used.push_back(static_cast<int>(i));
        std::sort(used.begin(), used.end());
        std::vector<int> all(static_cast<std::size_t>(B));
        std::iota(all.begin(), all.end(), 0);
        CHECK(used == all);
        CHECK(ot.last_cost() == Approx((eps - z).squaredNorm()));
        CHECK(ot.last_cost() < (pool - z).squaredNorm());
        Matrix<double> c(B, B);
        fmd::coupling::detail::squared_distances(pool, z, c);
        CHECK(ot.last_cost() == Approx(min_cost_flow(c)).epsilon(1e-10));
    }
    SECTION("pool_factor 3: distinct draws out of 3B, cheaper than without the pool") {
        fmd::coupling::ExactOT<S> ot({.pool_factor = 3});
        CHECK(ot.pool_size(B) == 3 * B);
        const Matrix<S> pool = fmd_test::normal<S>(2, 3 * B, rng);
        Matrix<S> eps(2, B), eps1(2, B);
        ot.couple(pool, z, {}, eps, rng);
        std::set<std::pair<double, double>> distinct;
        for (Eigen::Index j = 0; j < B; ++j) distinct.insert({eps(0, j), eps(1, j)});
        CHECK(distinct.size() == static_cast<std::size_t>(B));
        fmd::coupling::ExactOT<S> plain;
        plain.couple(Matrix<S>(pool.leftCols(B)), z, {}, eps1, rng);
        CHECK(ot.last_cost() <= plain.last_cost());
    }
    SECTION("labelled: pairs stay inside each class's block of the pool") {
        std::vector<int> labels(static_cast<std::size_t>(B));
        for (Eigen::Index j = 0; j < B; ++j) labels[static_cast<std::size_t>(j)] = static_cast<int>((j * 7) % 3);  // classes 0, 1, 2 interleaved
        fmd::coupling::ExactOT<S> ot({.pool_factor = 2});
        const Matrix<S> pool = fmd_test::normal<S>(2, 2 * B, rng);
        Matrix<S> eps(2, B);
        ot.couple(pool, z, labels, eps, rng);
        // Class c owns pool columns [2·start_c, 2·(start_c + n_c)) where start_c counts lower classes.
        std::vector<int> count(3, 0);
        for (int y : labels) ++count[static_cast<std::size_t>(y)];
        std::vector<int> start = {0, count[0], count[0] + count[1]};
        double total = 0;
        for (Eigen::Index j = 0; j < B; ++j) {
            const int y = labels[static_cast<std::size_t>(j)];
            Eigen::Index from = -1;
            for (Eigen::Index i = 0; i < 2 * B; ++i)
                if (eps.col(j) == pool.col(i)) from = i;
            REQUIRE(from >= 0);
            CHECK(from >= 2 * start[static_cast<std::size_t>(y)]);
            CHECK(from < 2 * (start[static_cast<std::size_t>(y)] + count[static_cast<std::size_t>(y)]));
        }
        // …and inside each class the pairing is optimal.
        for (int y = 0; y < 3; ++y) {
            std::vector<Eigen::Index> cols;
            for (Eigen::Index j = 0; j < B; ++j)
                if (labels[static_cast<std::size_t>(j)] == y) cols.push_back(j);
            Matrix<S> zc(2, static_cast<Eigen::Index>(cols.size())), ec(2, static_cast<Eigen::Index>(cols.size()));
            for (std::size_t k = 0; k < cols.size(); ++k) {
                zc.col(static_cast<Eigen::Index>(k)) = z.col(cols[k]);
                ec.col(static_cast<Eigen::Index>(k)) = eps.col(cols[k]);
            }
            Matrix<double> c(2 * zc.cols(), zc.cols());
            fmd::coupling::detail::squared_distances(pool.middleCols(2 * start[static_cast<std::size_t>(y)], 2 * zc.cols()), zc, c);
            CHECK((ec - zc).squaredNorm() == Approx(min_cost_flow(c)).epsilon(1e-10));
            total += (ec - zc).squaredNorm();
        }
        CHECK(ot.last_cost() == Approx(total));
    }
}

TEST_CASE("Sinkhorn: marginals, convergence to the exact OT cost as ε → 0, no NaN at ε = 1e-3", "[coupling]") {
    fmd::Rng rng(4);
    const Eigen::Index B = 24;
    Matrix<double> z(2, B);
    fmd::data::Checkerboard{}.sample(z, rng);
    const Matrix<double> noise = fmd_test::normal<double>(2, B, rng);
    Matrix<double> c(B, B);
    fmd::coupling::detail::squared_distances(noise, z, c);
    fmd::coupling::Assignment exact;
    exact.solve(c);
    const double ot = exact.total_cost(c) / static_cast<double>(B);  // ⟨π, C⟩ of the optimal plan with mass 1/B per pair
    double previous_gap = std::numeric_limits<double>::infinity();
    for (const double eps : {4.0, 1.0, 0.25, 0.05}) {
        fmd::coupling::Sinkhorn<double> sk({.epsilon = eps, .tolerance = 1e-6, .max_iterations = 100000});
        const double cost = sk.solve(c);
        // Marginals: rows and columns of π each sum to 1/B.
        Matrix<double> plan(B, B);
        for (Eigen::Index j = 0; j < B; ++j)
            for (Eigen::Index i = 0; i < B; ++i) plan(i, j) = std::exp((sk.f()(i) + sk.g()(j) - c(i, j)) / eps);
        CHECK((plan.rowwise().sum().array() - 1.0 / B).abs().sum() <= 1e-6);
        CHECK((plan.colwise().sum().array() - 1.0 / B).abs().maxCoeff() < 1e-12);
        const double gap = cost - ot;
        WARN("ε " << eps << ": entropic cost " << cost << ", exact " << ot << ", gap " << gap << ", " << sk.iterations() << " sweeps");
        CHECK(gap >= -1e-9);
        CHECK(gap < previous_gap);
        previous_gap = gap;
    }
    CHECK(previous_gap < 0.02 * ot);
    SECTION("ε = 1e-3 on checkerboard-scaled data: finite potentials, or the iteration cap's error — never NaN") {
        fmd::coupling::Sinkhorn<double> sk({.epsilon = 1e-3, .tolerance = 1e-4, .max_iterations = 2000});
        try {
            sk.solve(c);
            CHECK(sk.f().head(B).allFinite());
            CHECK(sk.g().head(B).allFinite());
        } catch (const fmd::numerical_error& e) {
            CHECK_THAT(std::string(e.what()), Catch::Contains("argument 'max_iterations'"));
            CHECK(sk.f().head(B).allFinite());
        }
        Matrix<double> eps_out(2, B);
        fmd::coupling::Sinkhorn<double> loose({.epsilon = 1e-3, .tolerance = 1e-2, .max_iterations = 100000});
        loose.couple(noise, z, {}, eps_out, rng);
        CHECK(eps_out.allFinite());
    }
    SECTION("couple: every data column gets a noise column from the pool, near the exact pairing at small ε") {
        fmd::coupling::Sinkhorn<double> sk({.epsilon = 0.01, .tolerance = 1e-4, .max_iterations = 100000});
        Matrix<double> eps_out(2, B);
        sk.couple(noise, z, {}, eps_out, rng);
        for (Eigen::Index j = 0; j < B; ++j) {
            bool found = false;
            for (Eigen::Index i = 0; i < B; ++i) found = found || eps_out.col(j) == noise.col(i);
            CHECK(found);
        }
        CHECK(sk.last_cost() == Approx((eps_out - z).squaredNorm()));
        CHECK(sk.last_cost() < 1.1 * exact.total_cost(c));
    }
}

TEST_CASE("Couplings: bad inputs name the argument", "[coupling][errors]") {
    using S = double;
    fmd::Rng rng(5);
    const Matrix<S> z = fmd_test::normal<S>(2, 8, rng), pool = fmd_test::normal<S>(2, 8, rng);
    Matrix<S> eps(2, 8);
    fmd::coupling::ExactOT<S> ot;
    CHECK_THROWS_MATCHES(ot.couple(Matrix<S>(pool.leftCols(7)), z, {}, eps, rng), fmd::invalid_argument, names("pool", "2 x 8"));
    CHECK_THROWS_MATCHES(ot.couple(Matrix<S>(3, 8), z, {}, eps, rng), fmd::invalid_argument, names("pool"));
    Matrix<S> wrong(2, 5);
    CHECK_THROWS_MATCHES(ot.couple(pool, z, {}, wrong, rng), fmd::invalid_argument, names("eps"));
    Matrix<S> bad = pool;
    bad(1, 3) = std::numeric_limits<S>::quiet_NaN();
    CHECK_THROWS_MATCHES(ot.couple(bad, z, {}, eps, rng), fmd::invalid_argument, names("pool", "non-finite"));
    const std::vector<int> short_labels = {0, 1};
    CHECK_THROWS_MATCHES(ot.couple(pool, z, short_labels, eps, rng), fmd::invalid_argument, names("labels"));
    CHECK_THROWS_MATCHES(fmd::coupling::ExactOT<S>({.pool_factor = 0}), fmd::invalid_argument, names("pool_factor"));
    CHECK_THROWS_MATCHES(fmd::coupling::Sinkhorn<S>({.epsilon = 0.0}), fmd::invalid_argument, names("epsilon"));
    CHECK_THROWS_MATCHES(fmd::coupling::Sinkhorn<S>({.epsilon = -1.0}), fmd::invalid_argument, names("epsilon"));
    CHECK_THROWS_MATCHES(fmd::coupling::Sinkhorn<S>({.tolerance = 0.0}), fmd::invalid_argument, names("tolerance"));
    Matrix<double> c = Matrix<double>::Ones(3, 3);
    c(0, 2) = std::numeric_limits<double>::infinity();
    fmd::coupling::Assignment solver;
    CHECK_THROWS_MATCHES(solver.solve(c), fmd::invalid_argument, names("cost", "non-finite"));
    CHECK_THROWS_MATCHES(solver.solve(Matrix<double>::Ones(2, 3)), fmd::invalid_argument, names("cost", "at least as many rows"));
    fmd::coupling::Sinkhorn<S> capped({.epsilon = 0.01, .tolerance = 1e-12, .max_iterations = 3});
    CHECK_THROWS_MATCHES(capped.couple(pool, z, {}, eps, rng), fmd::numerical_error, names("max_iterations", "marginal error"));
}

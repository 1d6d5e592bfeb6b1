#pragma once
// Flow maps (theory.md §9.3–§9.5): a model of the average velocity ū(x, t, r) over [t, r] along
// the ODE trajectory through x at time t, so that one jump lands on the trajectory's state at r:
//   X_r = x + (r − t)·ū(x, t, r),   ū(x, t, t) = u_t(x).
// MeanFlow and shortcut models are flow maps (a two-time network); a consistency model is one
// through its endpoint prediction (flowmap/consistency.hpp); any velocity field is one of zero
// jump length (AsFlowMap), and the jump sampler is then exactly Euler.
#include <algorithm>
#include <concepts>
#include <cmath>
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/grid.hpp>
#include <fmd/solver/integrate.hpp>

namespace fmd {

/// f(x, t, r, out): ū(x, t, r) for a dim x n batch at times t ≤ r shared by the batch.
template <class F, class S>
concept FlowMap = requires(F& f, In<S> x, double t, double r, Out<S> out) { f(x, t, r, out); };

/// f(x, t, r, labels, out): the class-conditional flow map ū(x_j, t, r | y_j).
template <class F, class S>
concept ConditionalFlowMap = requires(F& f, In<S> x, double t, double r, Labels labels, Out<S> out) { f(x, t, r, labels, out); };

/// A velocity field seen as a flow map: ū(x, t, r) = u_t(x), exact as r → t (a jump is an Euler step).
template <class F>
class AsFlowMap {
public:
    /// Holds `field` by reference.
    explicit AsFlowMap(F& field) : field_(&field) {}
    /// ū(x, t, r) = u_t(x) for any r.
    template <class S>
    void operator()(const Eigen::Ref<const Matrix<S>>& x, double t, double /*r*/, Eigen::Ref<Matrix<S>> out) {
        (*field_)(x, t, out);
    }

private:
    F* field_;
};

/// A conditional flow map with its labels bound (one per column, or one for all): a FlowMap.
/// The labels are copied by set_labels (allocation there only).
template <class S, class F>
class WithLabels {
public:
    /// Holds `map` by reference and a copy of `labels`.
    WithLabels(F& map, Labels labels) : map_(&map) { set_labels(labels); }
    /// Replaces the bound labels (one per column, or one for all); throws fmd::invalid_argument naming
    /// 'labels' when empty.
    void set_labels(Labels labels) {
        if (labels.empty()) detail::fail("WithLabels::set_labels", "labels", "must hold one label per column (or one for all), got none");
        labels_.assign(labels.begin(), labels.end());
    }
    /// ū(x, t, r | labels) for the batch x (dim × n).
    void operator()(In<S> x, double t, double r, Out<S> out) {
        const auto n = static_cast<std::size_t>(x.cols());
        if (labels_.size() == n) {
            (*map_)(x, t, r, Labels(labels_), out);
            return;
        }
        if (labels_.size() != 1)
            detail::fail("WithLabels::operator()", "labels", "must hold one label per column of x (", n, ") or a single label, got ", labels_.size());
        if (all_.size() != n) all_.assign(n, labels_[0]);
        else std::fill(all_.begin(), all_.end(), labels_[0]);
        (*map_)(x, t, r, Labels(all_), out);
    }

private:
    F* map_;
    std::vector<int> labels_, all_;
};

namespace detail {
/// The training forward of a two-time network at per-sample (t, r), labelled when labels are given
/// (and the network takes them; otherwise an error naming 'labels' from `where`).
template <class S, class Net>
void two_time_forward(std::string_view where, Net& net, In<S> x, const RowIn<S>& t, const RowIn<S>& r, Labels labels, Out<S> out) {
    if (labels.empty()) net.forward(x, t, r, out);
    else if constexpr (requires { net.forward(x, t, r, labels, out); }) net.forward(x, t, r, labels, out);
    else fail(where, "labels", "need a network with forward(x, t, r, labels, out)");
}

inline void check_jump(std::string_view where, double t, double r) {
    if (!(t >= 0.0 && t <= 1.0)) fail(where, "t", "must lie in [0, 1], got ", t);
    if (!(r >= 0.0 && r <= 1.0)) fail(where, "r", "must lie in [0, 1], got ", r);
    if (!(r >= t)) fail(where, "r", "must be >= t (jumps go forward in time), got t = ", t, ", r = ", r);
}
}  // namespace detail

/// One jump x ← x + (r − t)·ū(x, t, r) in place, 0 ≤ t ≤ r ≤ 1; `work` holds ū (sized on first use).
template <class S, class F>
void flow_map_jump(F& map, Matrix<S>& x, double t, double r, Matrix<S>& work) {
    static_assert(FlowMap<F, S>, "fmd::flow_map_jump: the map needs `void operator()(In<S> x, double t, double r, Out<S> out)` (fmd::FlowMap)");
    constexpr std::string_view where = "flow_map_jump";
    detail::require_nonempty(where, "x", x);
    detail::check_jump(where, t, r);
    if (work.rows() != x.rows() || work.cols() != x.cols()) work.resize(x.rows(), x.cols());
    map(In<S>(x), t, r, Out<S>(work));
    x += S(r - t) * work;
}

/// Jumps along the grid: x ← x + (t_{k+1} − t_k)·ū(x, t_k, t_{k+1}), one evaluation per jump, in
/// place (grid::uniform(1) is one-step generation, grid::uniform(4) four jumps). grid: strictly
/// increasing in [0, 1]. observer(t, x) at every grid time, the first included. NFE = jumps.
/// Allocates nothing once `work` has the shape of x.
template <class S, class F, class Obs = NoObserver>
SolveStats sample_flow_map(F& map, Matrix<S>& x, const std::vector<double>& grid, Matrix<S>& work, Obs&& observer = {}) {
    static_assert(FlowMap<F, S>, "fmd::sample_flow_map: the map needs `void operator()(In<S> x, double t, double r, Out<S> out)` (fmd::FlowMap)");
    constexpr const char* where = "sample_flow_map";
    detail::require_nonempty(where, "x", x);
    grid::validate(grid, where);
    if (work.rows() != x.rows() || work.cols() != x.cols()) work.resize(x.rows(), x.cols());
    SolveStats stats;
    observer(grid.front(), std::as_const(x));
    for (std::size_t k = 0; k + 1 < grid.size(); ++k) {
        map(In<S>(x), grid[k], grid[k + 1], Out<S>(work));
        x += S(grid[k + 1] - grid[k]) * work;
        ++stats.nfe;
        ++stats.steps;
        observer(grid[k + 1], std::as_const(x));
    }
    return stats;
}

/// The same with a buffer of its own (allocates it per call).
template <class S, class F, class Obs = NoObserver>
SolveStats sample_flow_map(F& map, Matrix<S>& x, const std::vector<double>& grid, Obs&& observer = {}) {
    Matrix<S> work;
    return sample_flow_map(map, x, grid, work, std::forward<Obs>(observer));
}

}  // namespace fmd

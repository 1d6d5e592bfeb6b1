#pragma once
// Classifier-free guidance (theory.md §7.8): a conditional field f(x, t, labels, out) seen as a
// plain VectorField
//
//   ũ_t(x|y) = (1 − w) u_t(x|∅) + w u_t(x|y) = u_t(x|∅) + w (u_t(x|y) − u_t(x|∅))
//
// Convention (the course's): w = 1 is the plain conditional model (unguided), w = 0 the
// unconditional one, w > 1 guides (labs use 3, 5); Ho & Salimans' w_HS is w − 1.
//
// The mix is affine with weights summing to 1, so by theory.md §5.6 the same adapter guides a
// velocity, score, ε̂ or x̂1 network alike and commutes with every conversion: guide first and
// convert (Reparameterized, SdeDrift), or convert both branches and guide — the same field.
// Hence it works with every ODE stepper and, through fmd::sample(path, …) / SdeDrift, with the
// SDE samplers (drift u + σ²/2·s, both guided with the same w).
#include <cmath>
#include <span>
#include <string_view>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

namespace fmd {

/// Guided<S, F>: wraps a ConditionalField by reference. Each call evaluates both branches in ONE
/// call of the wrapped field on a dim x 2n batch [x, x] with labels [y, ∅] (one network pass
/// instead of two, the GEMM-friendly shape), then mixes. w = 1 and w = 0 need one branch only
/// and evaluate n columns. The workspace grows to the largest batch seen: no allocation after
/// the first call at that or any smaller batch size. Over a conditional flow map
/// f(x, t, r, labels, out) it is also a flow map (the same mix of ū(x, t, r | ·); theory.md §9.5's
/// shortcut models sample with CFG this way).
///
///   fmd::Guided<float, Net> guided(net, net.null_label(), 3.0);
///   guided.set_labels(labels);                  // one per column, or a single label for all
///   fmd::sample(guided, x, grid, heun);         // any stepper; fmd::sample(path, guided, …) for SDEs
template <class S, class F>
class Guided {
public:
    /// field: the conditional model; null_label: its ∅; w: guidance weight (finite).
    Guided(F& field, int null_label, double w) : field_(&field), null_(null_label) { set_weight(w); }
    /// As above, with the labels of set_labels().
    Guided(F& field, int null_label, double w, Labels labels) : Guided(field, null_label, w) { set_labels(labels); }

    /// Labels for the next calls: one per column of x, or a single label used for every column.
    /// Copied (may allocate here, never in operator()).
    void set_labels(Labels labels) {
        if (labels.empty()) detail::fail("Guided::set_labels", "labels", "must hold one label per column (or one for all), got none");
        labels_.assign(labels.begin(), labels.end());
    }
    /// One label y for every column.
    void set_label(int y) { set_labels(Labels(&y, 1)); }
    /// The labels set last (one per column, or a single one for all).
    const std::vector<int>& labels() const { return labels_; }

    /// Sets the guidance weight w (w = 1: the conditional field, w = 0: the unconditional one); throws
    /// fmd::invalid_argument naming 'w' unless finite.
    void set_weight(double w) {
        if (!std::isfinite(w)) detail::fail("Guided", "w", "must be finite, got ", w);
        w_ = w;
    }
    /// The guidance weight w.
    double weight() const { return w_; }
    /// The wrapped field's null label ∅.
    int null_label() const { return null_; }

    /// ũ_t(x|y) into out (same shape as the field's output for x: rows of out × n).
    void operator()(In<S> x, double t, Out<S> out) {
        mix([&](In<S> xs, Labels lab, Out<S> o) { (*field_)(xs, t, lab, o); }, x, out);
    }
    /// The guided flow map ū(x, t, r|y) = ū(x, t, r|∅) + w (ū(x, t, r|y) − ū(x, t, r|∅)) (F a
    /// conditional flow map: f(x, t, r, labels, out)).
    template <class G = F>
        requires requires(G& f, In<S> x, double t, Labels lab, Out<S> out) { f(x, t, t, lab, out); }
    void operator()(In<S> x, double t, double r, Out<S> out) {
        mix([&](In<S> xs, Labels lab, Out<S> o) { (*field_)(xs, t, r, lab, o); }, x, out);
    }

private:
    template <class Call>
    void mix(Call&& call, In<S> x, Out<S> out) {
        constexpr std::string_view where = "Guided::operator()";
        const Eigen::Index n = x.cols();
        if (labels_.empty()) detail::fail(where, "labels", "are not set (call set_labels or set_label first)");
        if (labels_.size() != 1 && static_cast<Eigen::Index>(labels_.size()) != n)
            detail::fail(where, "labels", "must hold one label per column of x (", n, ") or a single label, got ", labels_.size());
        if (out.cols() != n) detail::fail(where, "out", "must have ", n, " columns like x, got ", out.cols());
        const Eigen::Index d = x.rows(), m = out.rows();
        const bool one_branch = w_ == 1.0 || w_ == 0.0;
        const Eigen::Index cols = one_branch ? n : 2 * n;
        ensure(d, m, cols);

        // Labels of the batched call: [y_0 … y_{n−1}, ∅ … ∅] (only one half when one branch suffices).
        for (Eigen::Index j = 0; j < n; ++j) {
            const int y = labels_.size() == 1 ? labels_[0] : labels_[static_cast<std::size_t>(j)];
            lab_[static_cast<std::size_t>(j)] = w_ == 0.0 ? null_ : y;
            if (!one_branch) lab_[static_cast<std::size_t>(n + j)] = null_;
        }
        const Labels lab(lab_.data(), static_cast<std::size_t>(cols));
        if (one_branch) {
            call(x, lab, out);
            return;
        }
        x2_.leftCols(n) = x;
        x2_.middleCols(n, n) = x;
        call(In<S>(x2_.leftCols(cols)), lab, Out<S>(out2_.leftCols(cols)));
        // ∅ + w (y − ∅) (theory.md §7.8).
        out = out2_.middleCols(n, n) + S(w_) * (out2_.leftCols(n) - out2_.middleCols(n, n));
    }

    void ensure(Eigen::Index d, Eigen::Index m, Eigen::Index cols) {
        if (x2_.rows() != d || x2_.cols() < cols) x2_.resize(d, cols);
        if (out2_.rows() != m || out2_.cols() < cols) out2_.resize(m, cols);
        if (static_cast<Eigen::Index>(lab_.size()) < cols) lab_.resize(static_cast<std::size_t>(cols));
    }

    F* field_;
    int null_;
    double w_ = 1.0;
    std::vector<int> labels_;
    std::vector<int> lab_;
    Matrix<S> x2_, out2_;
};

/// guided<float>(net, net.null_label(), 3.0, labels): Guided with the field type deduced.
template <class S, class F>
Guided<S, F> guided(F& field, int null_label, double w, Labels labels) {
    static_assert(ConditionalField<F, S>, "fmd::guided: the field must model fmd::ConditionalField (f(x, t, labels, out))");
    return Guided<S, F>(field, null_label, w, labels);
}

}  // namespace fmd

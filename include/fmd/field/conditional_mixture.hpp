#pragma once
// Labelled Gaussian-mixture data and its exact class-conditional fields (theory.md §8.1, §7.8):
// component k of the mixture carries class c_k, so p(z | y) is the mixture restricted to the
// components of class y (weights renormalized) and p(z | ∅) = p(z) the whole mixture.
// The exact u_t(x|y) is MixtureOracle of the restricted mixture: the test oracle for guidance
// and for trained class-conditional networks.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/field/gaussian_mixture.hpp>

namespace fmd {

/// A GaussianMixture whose components carry class labels 0 … classes() − 1 (several components
/// may share a class; each class needs one). The null label ∅ is classes(). Also a labelled data
/// source: sample(out, labels, rng) draws (z, y) pairs.
template <class S>
class LabelledMixture {
public:
    /// component_class: the class of each component (K entries, classes 0 … C − 1, each used); throws
    /// fmd::invalid_argument naming 'component_class' otherwise.
    LabelledMixture(GaussianMixture<S> mixture, std::vector<int> component_class)
        : mix_(std::move(mixture)), class_(std::move(component_class)) {
        constexpr std::string_view where = "LabelledMixture";
        const auto K = static_cast<std::size_t>(mix_.components());
        if (class_.size() != K) detail::fail(where, "component_class", "must give one class per component (", K, "), got ", class_.size());
        int c = 0;
        for (int y : class_) {
            if (y < 0) detail::fail(where, "component_class", "must hold classes >= 0, got ", y);
            c = std::max(c, y + 1);
        }
        for (int y = 0; y < c; ++y)
            if (std::find(class_.begin(), class_.end(), y) == class_.end())
                detail::fail(where, "component_class", "leaves class ", y, " without a component (classes must be 0 … C − 1)");
        classes_ = c;
        double acc = 0;
        for (std::size_t k = 0; k < K; ++k) cumulative_.push_back(acc += static_cast<double>(mix_.weights()(static_cast<Eigen::Index>(k))));
    }

    /// The whole mixture p(z).
    const GaussianMixture<S>& mixture() const { return mix_; }
    /// The class of each component.
    const std::vector<int>& component_class() const { return class_; }
    /// C, the number of classes.
    int classes() const { return classes_; }
    /// The null label ∅ = C.
    int null_label() const { return classes_; }
    /// The data dimension d.
    Eigen::Index dim() const { return mix_.dim(); }

    /// p(z | y): the components of class y with renormalized weights; y = null_label() gives p(z).
    GaussianMixture<S> class_mixture(int y) const {
        if (y < 0 || y > classes_) detail::fail("LabelledMixture::class_mixture", "y", "must lie in [0, ", classes_, "] (", classes_, " = ∅), got ", y);
        if (y == classes_) return mix_;
        std::vector<Eigen::Index> ks;
        for (std::size_t k = 0; k < class_.size(); ++k)
            if (class_[k] == y) ks.push_back(static_cast<Eigen::Index>(k));
        const auto m = static_cast<Eigen::Index>(ks.size());
        Matrix<S> mu(dim(), m);
        Vector<S> sd(m), w(m);
        for (Eigen::Index i = 0; i < m; ++i) {
            const Eigen::Index k = ks[static_cast<std::size_t>(i)];
            mu.col(i) = mix_.means().col(k);
            sd(i) = mix_.stds()(k);
            w(i) = mix_.weights()(k);
        }
        return GaussianMixture<S>(mu, sd, w);
    }

    /// Draws (z_j, y_j) ~ p(z, y) into column j of out and labels[j]. No allocation.
    template <Dense O, class G>
    void sample(O&& out, std::span<int> labels, G& rng) const {
        constexpr std::string_view where = "LabelledMixture::sample";
        if (out.rows() != dim()) detail::fail(where, "out", "must have ", dim(), " rows, got ", out.rows());
        if (static_cast<Eigen::Index>(labels.size()) != out.cols())
            detail::fail(where, "labels", "must hold one entry per column of out (", out.cols(), "), got ", labels.size());
        NormalSampler normal;
        const Eigen::Index K = mix_.components();
        for (Eigen::Index j = 0; j < out.cols(); ++j) {
            const double u = uniform01(rng);
            Eigen::Index k = 0;
            while (k + 1 < K && u > cumulative_[static_cast<std::size_t>(k)]) ++k;
            for (Eigen::Index i = 0; i < dim(); ++i) out(i, j) = mix_.means()(i, k) + mix_.stds()(k) * static_cast<S>(normal(rng));
            labels[static_cast<std::size_t>(j)] = class_[static_cast<std::size_t>(k)];
        }
    }

private:
    GaussianMixture<S> mix_;
    std::vector<int> class_;
    int classes_ = 0;
    std::vector<double> cumulative_;
};

/// Exact u_t(x|y), s_t(x|y), x̂1, ε̂ of a LabelledMixture (theory.md §8.1 per class): a
/// MixtureOracle per class plus one of the whole mixture for ∅. Columns with the same label in a
/// row are evaluated as one block. Models fmd::ConditionalField through velocity_field() /
/// score_field() (and operator(), the velocity).
template <class Path, class S>
class ConditionalMixtureOracle {
public:
    /// Builds one MixtureOracle per class and one for ∅; the path is copied.
    ConditionalMixtureOracle(const Path& path, const LabelledMixture<S>& data) : classes_(data.classes()) {
        oracles_.reserve(static_cast<std::size_t>(classes_ + 1));
        for (int y = 0; y <= classes_; ++y) oracles_.emplace_back(path, data.class_mixture(y));
    }

    /// C, the number of classes.
    int classes() const { return classes_; }
    /// The null label ∅ = C.
    int null_label() const { return classes_; }
    /// The oracle of class y (y = null_label(): the unconditional one).
    MixtureOracle<Path, S>& oracle(int y) { return oracles_[index(y, "y")]; }

    /// u_t(x|y) per column (theory.md §8.1); labels: one per column of x, each in [0, C] (C = ∅),
    /// else fmd::invalid_argument naming 'labels'.
    void velocity(In<S> x, double t, Labels labels, Out<S> out) { dispatch(&MixtureOracle<Path, S>::velocity, x, t, labels, out); }
    /// s_t(x|y) = ∇log p_t(x|y) per column; labels as in velocity().
    void score(In<S> x, double t, Labels labels, Out<S> out) { dispatch(&MixtureOracle<Path, S>::score, x, t, labels, out); }
    /// x̂1 = E[z | x_t = x, y] per column; labels as in velocity().
    void x1(In<S> x, double t, Labels labels, Out<S> out) { dispatch(&MixtureOracle<Path, S>::x1, x, t, labels, out); }
    /// ε̂ = E[ε | x_t = x, y] per column; labels as in velocity().
    void epsilon(In<S> x, double t, Labels labels, Out<S> out) { dispatch(&MixtureOracle<Path, S>::epsilon, x, t, labels, out); }
    /// The velocity u_t(x|y): the ConditionalField call.
    void operator()(In<S> x, double t, Labels labels, Out<S> out) { velocity(x, t, labels, out); }

    /// A ConditionalField lambda calling velocity() (holds this oracle by reference).
    auto velocity_field() {
        return [this](In<S> x, double t, Labels labels, Out<S> out) { velocity(x, t, labels, out); };
    }
    /// A ConditionalField lambda calling score() (holds this oracle by reference).
    auto score_field() {
        return [this](In<S> x, double t, Labels labels, Out<S> out) { score(x, t, labels, out); };
    }

private:
    std::size_t index(int y, std::string_view argument) const {
        if (y < 0 || y > classes_)
            detail::fail("ConditionalMixtureOracle", argument, "must lie in [0, ", classes_, "] (", classes_, " = ∅), got ", y);
        return static_cast<std::size_t>(y);
    }

    template <class Method>
    void dispatch(Method method, In<S> x, double t, Labels labels, Out<S> out) {
        const Eigen::Index n = x.cols();
        if (static_cast<Eigen::Index>(labels.size()) != n)
            detail::fail("ConditionalMixtureOracle", "labels", "must hold one label per column of x (", n, "), got ", labels.size());
        detail::require_same_shape("ConditionalMixtureOracle", "x", x, "out", out);
        for (Eigen::Index j = 0; j < n;) {
            const int y = labels[static_cast<std::size_t>(j)];
            Eigen::Index e = j + 1;
            while (e < n && labels[static_cast<std::size_t>(e)] == y) ++e;
            (oracles_[index(y, "labels")].*method)(x.middleCols(j, e - j), t, out.middleCols(j, e - j));
            j = e;
        }
    }

    int classes_;
    std::vector<MixtureOracle<Path, S>> oracles_;
};

}  // namespace fmd

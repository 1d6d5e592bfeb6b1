#pragma once
// Field concepts (docs/architecture.md): a field writes its value at (x, t) into `out`, allocating nothing.
#include <concepts>
#include <span>

#include <fmd/core/types.hpp>

namespace fmd {

/// f(x, t, out): u_t(x) for a dim x n batch x at one time t, written into out (dim x n).
/// Networks, analytic oracles, adapters and plain lambdas
///   `[&](fmd::In<float> x, double t, fmd::Out<float> out) { ... }`
/// all model it.
template <class F, class S>
concept VectorField = requires(F& f, In<S> x, double t, Out<S> out) { f(x, t, out); };

/// Same calling convention; the value is a score ∇log p_t(x) (theory.md §3.4).
template <class F, class S>
concept ScoreField = VectorField<F, S>;

/// Class labels of a batch, one per column; each model defines its reserved null label ∅
/// (nn::MLP: null_label() == num_classes).
using Labels = std::span<const int>;

/// f(x, t, labels, out): the class-conditional field u_t(x|y) with y = labels[j] for column j
/// (and u_t(x|∅) for the model's null label). Guidance (field/guidance.hpp) turns one into a
/// VectorField (theory.md §7.8).
template <class F, class S>
concept ConditionalField = requires(F& f, In<S> x, double t, Labels labels, Out<S> out) { f(x, t, labels, out); };

/// σ_t of an SDE (theory.md §2.4, §7.7): any callable double(double t) with σ_t ≥ 0.
template <class F>
concept SigmaPolicy = requires(const F& f, double t) {
    { f(t) } -> std::convertible_to<double>;
};

}  // namespace fmd

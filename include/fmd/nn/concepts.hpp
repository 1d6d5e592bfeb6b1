#pragma once
// Network, optimizer and learning-rate-schedule concepts (architecture.md "Concepts and policies").
// nn::MLP, nn::Adam / AdamW / SGD and nn::ConstantLr / WarmupCosine model them; a user's own
// network or optimizer only has to provide the same calls.
#include <concepts>
#include <cstdint>

#include <Eigen/Core>

#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

namespace fmd::nn {

/// A trainable field: parameters and gradients as contiguous buffers, a training forward pass at
/// per-sample times (1 x n) caching what backward needs, and a backward pass that overwrites the
/// gradients for ∂L/∂out = grad_out. Also a VectorField (one time for the whole batch) for sampling.
template <class N, class S>
concept Network = VectorField<N, S> &&
    requires(N& net, In<S> x, const RowIn<S>& t, Out<S> out, In<S> grad_out) {
        { net.parameter_count() } -> std::convertible_to<Eigen::Index>;
        { net.parameters() } -> std::convertible_to<Eigen::Ref<Vector<S>>>;
        { net.gradients() } -> std::convertible_to<Eigen::Ref<Vector<S>>>;
        net.forward(x, t, out);
        net.backward(grad_out);
    };

/// A class-conditional Network (theory.md §6.9): training forward and sampling call also take one
/// label per column (fmd::Labels), with a reserved null label ∅ for the unconditional model.
/// The unlabelled calls of Network stay valid (nn::MLP answers them with ∅), so a conditional
/// network is still used everywhere an unconditional one is; fmd::Guided mixes the two branches.
template <class N, class S>
concept ConditionalNetwork = Network<N, S> && ConditionalField<N, S> &&
    requires(N& net, const N& cnet, In<S> x, const RowIn<S>& t, Labels labels, Out<S> out) {
        net.forward(x, t, labels, out);
        { cnet.null_label() } -> std::convertible_to<int>;
    };

/// An optimizer updating a contiguous parameter buffer from its gradient buffer.
template <class O, class S>
concept Optimizer = requires(O& opt, Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>& grads, double lr) {
    opt.step(params, grads);
    opt.set_lr(lr);
    { opt.lr() } -> std::convertible_to<double>;
};

/// A learning-rate schedule: lr(step) for step = number of updates already taken.
template <class L>
concept LrSchedule = requires(const L& schedule, std::int64_t step) {
    { schedule.lr(step) } -> std::convertible_to<double>;
};

}  // namespace fmd::nn

#pragma once
// Network, optimizer and learning-rate-schedule concepts (docs/concepts.md has the full contract
// and a minimal model of each). nn::MLP, nn::Adam / AdamW / SGD and nn::ConstantLr / WarmupCosine
// model them; a user's own types need exactly the members listed here and nothing else.
//
// Each concept has a check_<concept><T>() whose static_asserts name the concept and the first
// missing member; train::Trainer calls them first, so a type that misses a member gets one error
// that says which, not a page of template noise.
#include <concepts>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

namespace fmd::nn {

/// What a checkpoint needs to resume an optimizer: the number of steps taken and its buffers
/// (Adam/AdamW: exp_avg, exp_avg_sq; SGD with momentum: momentum_buffer).
template <class S>
struct OptimizerState {
    std::int64_t step = 0;            ///< number of steps taken
    std::vector<Vector<S>> buffers;   ///< the optimizer's buffers, each as long as the parameter buffer
};

/// A trainable field (required members; S = N::Scalar, float or double):
///   - `using Scalar = S;`
///   - `Index input_dim() const;`                               rows of x (the trainer sizes batches by it)
///   - `Index parameter_count() const;`
///   - `parameters(), gradients()`                              contiguous buffers, convertible to `Eigen::Ref<Vector<S>>`
///   - `void forward(In<S> x, const RowIn<S>& t, Out<S> out);`  training pass at per-sample times, caches for backward
///   - `void backward(In<S> grad_out);`                         overwrites gradients() for ∂L/∂out = grad_out
///   - `void operator()(In<S> x, double t, Out<S> out);`        sampling call (a VectorField)
///
/// Optional, detected: std::string describe() const (stored in checkpoints and compared on restore).
template <class N, class S>
concept Network = VectorField<N, S> && std::same_as<typename N::Scalar, S> &&
    requires(N& net, const N& cnet, In<S> x, const RowIn<S>& t, Out<S> out, In<S> grad_out) {
        { cnet.input_dim() } -> std::convertible_to<Eigen::Index>;
        { cnet.parameter_count() } -> std::convertible_to<Eigen::Index>;
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

/// A two-time Network, a flow map ū(x, t, r) (theory.md §9.4–§9.5; nn::MLP with two_times):
///   - `void forward(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Out<S> out);`  training pass at per-sample (t, r)
///   - `void operator()(In<S> x, double t, double r, Out<S> out);`                 sampling call (an fmd::FlowMap)
///
/// MeanFlow also needs the forward-mode derivative of the last training forward along (v, ṫ, ṙ):
///   - `void tangent(In<S> v, double t_dot, double r_dot, Out<S> out);`
///
/// Labelled training adds forward(x, t, r, labels, out) (and ConditionalNetwork's members).
template <class N, class S>
concept TwoTimeNetwork = Network<N, S> && requires(N& net, In<S> x, const RowIn<S>& t, const RowIn<S>& r, double s, Out<S> out) {
    net.forward(x, t, r, out);
    net(x, s, s, out);
};

/// An optimizer updating a contiguous parameter buffer from its gradient buffer:
///   - `void step(Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>& grads);`
///   - `void set_lr(double);`  `double lr() const;`
///
/// Optional, detected: describe() (its kind, checked on restore).
template <class O, class S>
concept Optimizer = requires(O& opt, const O& copt, Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>& grads, double lr) {
    opt.step(params, grads);
    opt.set_lr(lr);
    { copt.lr() } -> std::convertible_to<double>;
};

/// An Optimizer whose state can be saved and restored (what Trainer::checkpoint / restore need):
///   - `const OptimizerState<S>& state() const;`   `void set_state(const OptimizerState<S>&);`  (validates, then replaces)
template <class O, class S>
concept StatefulOptimizer = Optimizer<O, S> && requires(O& opt, const O& copt, const OptimizerState<S>& st) {
    { copt.state() } -> std::convertible_to<const OptimizerState<S>&>;
    opt.set_state(st);
};

/// A learning-rate schedule: lr(step) for step = number of updates already taken.
template <class L>
concept LrSchedule = requires(const L& schedule, std::int64_t step) {
    { schedule.lr(step) } -> std::convertible_to<double>;
};

// ---------------------------------------------------------------------------------------------
// Static checks: the first failing static_assert names the concept and the missing member.

/// True when N models Network<N, N::Scalar>; otherwise the first failing static_assert names the
/// missing member. Use as `static_assert(nn::check_network<Net>());`.
template <class N>
constexpr bool check_network() {
    static_assert(requires { typename N::Scalar; }, "fmd::nn::Network: the network needs `using Scalar = float;` (or double)");
    if constexpr (requires { typename N::Scalar; }) {
        using S = typename N::Scalar;
        static_assert(requires(const N& n) { { n.input_dim() } -> std::convertible_to<Eigen::Index>; },
                      "fmd::nn::Network: missing `Index input_dim() const` (rows of x)");
        static_assert(requires(const N& n) { { n.parameter_count() } -> std::convertible_to<Eigen::Index>; },
                      "fmd::nn::Network: missing `Index parameter_count() const`");
        static_assert(requires(N& n) { { n.parameters() } -> std::convertible_to<Eigen::Ref<Vector<S>>>; },
                      "fmd::nn::Network: missing `parameters()` returning the contiguous parameter buffer (Eigen::Map<Vector<S>> or Ref)");
        static_assert(requires(N& n) { { n.gradients() } -> std::convertible_to<Eigen::Ref<Vector<S>>>; },
                      "fmd::nn::Network: missing `gradients()` returning the contiguous gradient buffer");
        static_assert(requires(N& n, In<S> x, const RowIn<S>& t, Out<S> out) { n.forward(x, t, out); },
                      "fmd::nn::Network: missing `void forward(In<S> x, const RowIn<S>& t, Out<S> out)` (training pass)");
        static_assert(requires(N& n, In<S> g) { n.backward(g); }, "fmd::nn::Network: missing `void backward(In<S> grad_out)`");
        static_assert(VectorField<N, S>, "fmd::nn::Network: missing the sampling call `void operator()(In<S> x, double t, Out<S> out)`");
    }
    return true;
}

/// check_network() plus the two-time members of TwoTimeNetwork.
template <class N>
constexpr bool check_two_time_network() {
    static_assert(check_network<N>());
    if constexpr (requires { typename N::Scalar; }) {
        using S = typename N::Scalar;
        static_assert(requires(N& n, In<S> x, const RowIn<S>& t, const RowIn<S>& r, Out<S> out) { n.forward(x, t, r, out); },
                      "fmd::nn::TwoTimeNetwork: missing `void forward(In<S> x, const RowIn<S>& t, const RowIn<S>& r, Out<S> out)` "
                      "(an nn::MLP needs MLPConfig::two_times = true)");
        static_assert(requires(N& n, In<S> x, double t, Out<S> out) { n(x, t, t, out); },
                      "fmd::nn::TwoTimeNetwork: missing the flow-map call `void operator()(In<S> x, double t, double r, Out<S> out)`");
    }
    return true;
}

/// True when O models Optimizer<O, S>; otherwise a static_assert names the missing member.
template <class O, class S>
constexpr bool check_optimizer() {
    static_assert(requires(O& o, Eigen::Ref<Vector<S>> p, const Eigen::Ref<const Vector<S>>& g) { o.step(p, g); },
                  "fmd::nn::Optimizer: missing `void step(Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>& grads)`");
    static_assert(requires(O& o) { o.set_lr(1.0); }, "fmd::nn::Optimizer: missing `void set_lr(double)`");
    static_assert(requires(const O& o) { { o.lr() } -> std::convertible_to<double>; }, "fmd::nn::Optimizer: missing `double lr() const`");
    return true;
}

/// True when O has StatefulOptimizer's state members; otherwise a static_assert names the missing one.
template <class O, class S>
constexpr bool check_stateful_optimizer() {
    static_assert(requires(const O& o) { { o.state() } -> std::convertible_to<const OptimizerState<S>&>; },
                  "fmd::nn::StatefulOptimizer (needed to checkpoint or restore): missing `const OptimizerState<S>& state() const`");
    static_assert(requires(O& o, const OptimizerState<S>& st) { o.set_state(st); },
                  "fmd::nn::StatefulOptimizer (needed to checkpoint or restore): missing `void set_state(const OptimizerState<S>&)`");
    return true;
}

}  // namespace fmd::nn

#pragma once
// Optimizers on contiguous parameter / gradient buffers (docs/architecture.md), with
// PyTorch's semantics and defaults (torch.optim.Adam, AdamW, SGD), global-norm gradient
// clipping (torch.nn.utils.clip_grad_norm_) and learning-rate schedules.
//
//   fmd::nn::AdamW<float> opt(net.parameter_count(), {.lr = 1e-4});
//   net.forward(x, t, out); ...; net.backward(grad_out);
//   fmd::nn::clip_grad_norm(net.gradients(), 1.0);
//   opt.set_lr(schedule.lr(step));
//   opt.step(net.parameters(), net.gradients());
//
// Updates run in cache-sized chunks, one pass over memory per step, split across Eigen's threads
// (fmd/core/parallel.hpp: bit-identical for any thread count); nothing is allocated
// after construction. Hyper-parameters are doubles; the arithmetic is in the scalar S.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include <fmd/core/error.hpp>
#include <fmd/core/parallel.hpp>
#include <fmd/core/types.hpp>
#include <fmd/nn/concepts.hpp>

namespace fmd::nn {

/// torch.optim.Adam defaults; weight_decay ≠ 0 adds weight_decay·p to the gradient (L2).
struct AdamConfig {
    double lr = 1e-3;  ///< learning rate (≥ 0)
    double beta1 = 0.9;  ///< decay of the first-moment average, in [0, 1)
    double beta2 = 0.999;  ///< decay of the second-moment average, in [0, 1)
    double eps = 1e-8;  ///< added to √v̂ in the denominator (≥ 0)
    double weight_decay = 0.0;  ///< L2 weight decay added to the gradient (≥ 0)
    /// Field-wise equality.
    friend bool operator==(const AdamConfig&, const AdamConfig&) = default;
};

/// torch.optim.AdamW defaults; decoupled decay p ← p − lr·weight_decay·p before the Adam update.
struct AdamWConfig {
    double lr = 1e-3;  ///< learning rate (≥ 0)
    double beta1 = 0.9;  ///< decay of the first-moment average, in [0, 1)
    double beta2 = 0.999;  ///< decay of the second-moment average, in [0, 1)
    double eps = 1e-8;  ///< added to √v̂ in the denominator (≥ 0)
    double weight_decay = 0.01;  ///< decoupled weight decay (≥ 0)
    /// Field-wise equality.
    friend bool operator==(const AdamWConfig&, const AdamWConfig&) = default;
};

/// torch.optim.SGD: d = g + weight_decay·p; buf = momentum·buf + (1 − dampening)·d (buf = d on
/// the first step); p ← p − lr·(nesterov ? d + momentum·buf : buf) (p ← p − lr·d without momentum).
struct SGDConfig {
    double lr = 1e-3;  ///< learning rate (≥ 0)
    double momentum = 0.0;  ///< momentum factor (≥ 0; 0: plain SGD)
    double dampening = 0.0;  ///< dampening of the momentum (≥ 0)
    double weight_decay = 0.0;  ///< L2 weight decay added to the gradient (≥ 0)
    bool nesterov = false;  ///< Nesterov momentum (needs momentum > 0 and dampening = 0)
    /// Field-wise equality.
    friend bool operator==(const SGDConfig&, const SGDConfig&) = default;
};

namespace impl {

/// Elements per pass: a few vectors stay in L1/L2.
inline constexpr Eigen::Index optim_chunk = 2048;
/// Elements per thread below which an update stays on one thread (waking another costs more).
inline constexpr Eigen::Index optim_grain = 1 << 16;

/// Calls f(i, len) on the chunks [i, i + len) of [0, n), split across threads at chunk boundaries
/// (so every thread count sees the same chunks: bit-identical updates).
template <class F>
void for_each_chunk(Eigen::Index n, F&& f) {
    parallel_for(n, optim_grain, [&](Eigen::Index lo, Eigen::Index hi) {
        for (Eigen::Index i = lo; i < hi; i += optim_chunk) f(i, std::min(optim_chunk, hi - i));
    }, optim_chunk);
}

/// Throws fmd::invalid_argument naming `argument` unless v is finite and ≥ 0.
inline void require_nonnegative(std::string_view where, std::string_view argument, double v) {
    if (!(v >= 0.0) || !std::isfinite(v)) fmd::detail::fail(where, argument, "must be finite and >= 0, got ", v);
}
/// Throws fmd::invalid_argument naming `argument` unless v ∈ [0, 1).
inline void require_beta(std::string_view where, std::string_view argument, double v) {
    if (!(v >= 0.0 && v < 1.0)) fmd::detail::fail(where, argument, "must lie in [0, 1), got ", v);
}

/// Throws fmd::invalid_argument naming 'params' or 'grads' unless both have n entries.
template <class S>
void require_buffers(std::string_view where, Eigen::Index n, const Eigen::Ref<Vector<S>>& params,
                     const Eigen::Ref<const Vector<S>>& grads) {
    if (params.size() != n) fmd::detail::fail(where, "params", "must have ", n, " entries (the optimizer's size), got ", params.size());
    if (grads.size() != n) fmd::detail::fail(where, "grads", "must have ", n, " entries (the optimizer's size), got ", grads.size());
}

/// Throws fmd::invalid_argument naming 'state' unless it has a step ≥ 0 and `buffers` finite buffers of n entries.
template <class S>
void check_state(std::string_view where, const OptimizerState<S>& s, std::size_t buffers, Eigen::Index n) {
    if (s.step < 0) fmd::detail::fail(where, "state", "step count must be >= 0, got ", s.step);
    if (s.buffers.size() != buffers) fmd::detail::fail(where, "state", "must hold ", buffers, " buffers, got ", s.buffers.size());
    for (const auto& b : s.buffers) {
        if (b.size() != n) fmd::detail::fail(where, "state", "buffers must have ", n, " entries, got ", b.size());
        if (!b.allFinite()) fmd::detail::fail(where, "state", "buffers contain a non-finite value (NaN or Inf)");
    }
}

/// Adam with L2 (Decoupled = false) or decoupled weight decay (Decoupled = true), as
/// torch.optim.Adam / AdamW (amsgrad = false, maximize = false):
/// \verbatim
///   t ← t + 1
///   AdamW: p ← p·(1 − lr·wd)          Adam: g ← g + wd·p
///   m ← m + (1 − β1)(g − m)           (= β1 m + (1 − β1) g, torch's lerp)
///   v ← β2 v + (1 − β2) g²
///   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
/// \endverbatim
template <class S, bool Decoupled>
class AdamImpl {
public:
    /// Names of the state buffers, in order (torch's state keys).
    static constexpr std::array<std::string_view, 2> state_names = {"exp_avg", "exp_avg_sq"};

    /// Throws fmd::invalid_argument naming 'parameter_count' (< 1), 'lr', 'eps', 'weight_decay' (negative or
    /// not finite), 'beta1' or 'beta2' (outside [0, 1)).
    AdamImpl(Eigen::Index parameter_count, double lr, double beta1, double beta2, double eps, double weight_decay)
        : lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps), wd_(weight_decay) {
        const std::string_view where = name();
        if (parameter_count < 1) fmd::detail::fail(where, "parameter_count", "must be >= 1, got ", parameter_count);
        require_nonnegative(where, "lr", lr);
        require_beta(where, "beta1", beta1);
        require_beta(where, "beta2", beta2);
        require_nonnegative(where, "eps", eps);
        require_nonnegative(where, "weight_decay", weight_decay);
        state_.buffers.assign(2, Vector<S>::Zero(parameter_count));
    }

    /// One update of params from grads (both of the size given at construction).
    void step(Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>& grads) {
        const Eigen::Index n = size();
        require_buffers<S>(name(), n, params, grads);
        const std::int64_t t = ++state_.step;
        const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t));
        const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t));
        const S step_size = static_cast<S>(lr_ / bc1);
        const S bc2_sqrt = static_cast<S>(std::sqrt(bc2));
        const S one_m_b1 = static_cast<S>(1.0 - beta1_), b2 = static_cast<S>(beta2_), one_m_b2 = static_cast<S>(1.0 - beta2_);
        const S eps = static_cast<S>(eps_), wd = static_cast<S>(wd_);
        const S decay = static_cast<S>(1.0 - lr_ * wd_);
        Vector<S>& m_all = state_.buffers[0];
        Vector<S>& v_all = state_.buffers[1];
        for_each_chunk(n, [&](Eigen::Index i, Eigen::Index len) {
            auto p = params.segment(i, len).array();
            auto g0 = grads.segment(i, len).array();
            auto m = m_all.segment(i, len).array();
            auto v = v_all.segment(i, len).array();
            if constexpr (Decoupled) {
                if (wd_ != 0.0) p *= decay;
                m += one_m_b1 * (g0 - m);
                v = b2 * v + one_m_b2 * g0.square();
            } else if (wd_ != 0.0) {
                m += one_m_b1 * ((g0 + wd * p) - m);
                v = b2 * v + one_m_b2 * (g0 + wd * p).square();
            } else {
                m += one_m_b1 * (g0 - m);
                v = b2 * v + one_m_b2 * g0.square();
            }
            p -= step_size * m / (v.sqrt() / bc2_sqrt + eps);
        });
    }

    /// The learning rate.
    double lr() const { return lr_; }
    /// Sets the learning rate (finite, ≥ 0; else fmd::invalid_argument naming 'lr').
    void set_lr(double lr) {
        require_nonnegative(name(), "lr", lr);
        lr_ = lr;
    }
    /// β1.
    double beta1() const { return beta1_; }
    /// β2.
    double beta2() const { return beta2_; }
    /// eps.
    double eps() const { return eps_; }
    /// The weight decay.
    double weight_decay() const { return wd_; }
    /// Number of parameters the optimizer was built for.
    Eigen::Index size() const { return state_.buffers[0].size(); }
    /// Number of steps taken (torch's state["step"]).
    std::int64_t steps() const { return state_.step; }

    /// The optimizer's kind, stored in checkpoints so a state is never restored into another kind.
    std::string describe() const { return std::string(name()); }

    /// Step count and {exp_avg, exp_avg_sq}, for checkpoints.
    const OptimizerState<S>& state() const { return state_; }
    /// Restores a state() (same size); throws fmd::error naming 'state' otherwise.
    void set_state(const OptimizerState<S>& s) {
        check_state(name(), s, 2, size());
        state_ = s;
    }

private:
    static constexpr std::string_view name() { return Decoupled ? "nn::AdamW" : "nn::Adam"; }
    double lr_, beta1_, beta2_, eps_, wd_;
    OptimizerState<S> state_;
};

}  // namespace impl

/// torch.optim.Adam on one contiguous buffer.
template <class S>
class Adam : public impl::AdamImpl<S, false> {
public:
    /// The configuration type.
    using Config = AdamConfig;
    /// An optimizer for `parameter_count` parameters; throws as impl::AdamImpl's constructor.
    explicit Adam(Eigen::Index parameter_count, const AdamConfig& c = {})
        : impl::AdamImpl<S, false>(parameter_count, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay) {}
};

/// torch.optim.AdamW on one contiguous buffer (decoupled weight decay, default 0.01).
template <class S>
class AdamW : public impl::AdamImpl<S, true> {
public:
    /// The configuration type.
    using Config = AdamWConfig;
    /// An optimizer for `parameter_count` parameters; throws as impl::AdamImpl's constructor.
    explicit AdamW(Eigen::Index parameter_count, const AdamWConfig& c = {})
        : impl::AdamImpl<S, true>(parameter_count, c.lr, c.beta1, c.beta2, c.eps, c.weight_decay) {}
};

/// torch.optim.SGD (momentum, dampening, L2 weight decay, Nesterov) on one contiguous buffer.
template <class S>
class SGD {
public:
    /// The configuration type.
    using Config = SGDConfig;
    /// Names of the state buffers (torch's state keys).
    static constexpr std::array<std::string_view, 1> state_names = {"momentum_buffer"};

    /// An optimizer for `parameter_count` parameters; throws fmd::invalid_argument naming 'parameter_count'
    /// (< 1), 'lr', 'momentum', 'dampening', 'weight_decay' (negative) or 'nesterov' (without momentum,
    /// or with dampening).
    explicit SGD(Eigen::Index parameter_count, const SGDConfig& c = {}) : c_(c), n_(parameter_count) {
        constexpr std::string_view where = "nn::SGD";
        if (parameter_count < 1) detail::fail(where, "parameter_count", "must be >= 1, got ", parameter_count);
        impl::require_nonnegative(where, "lr", c.lr);
        impl::require_nonnegative(where, "momentum", c.momentum);
        impl::require_nonnegative(where, "dampening", c.dampening);
        impl::require_nonnegative(where, "weight_decay", c.weight_decay);
        if (c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0))
            detail::fail(where, "nesterov", "requires momentum > 0 and dampening = 0");
        if (c.momentum != 0.0) state_.buffers.assign(1, Vector<S>::Zero(parameter_count));
    }

    /// One update of params from grads (both of the size given at construction; else
    /// fmd::invalid_argument naming 'params' or 'grads').
    void step(Eigen::Ref<Vector<S>> params, const Eigen::Ref<const Vector<S>>& grads) {
        impl::require_buffers<S>("nn::SGD", n_, params, grads);
        const bool first = state_.step == 0;
        ++state_.step;
        const S lr = static_cast<S>(c_.lr), wd = static_cast<S>(c_.weight_decay), mu = static_cast<S>(c_.momentum);
        const S keep = static_cast<S>(1.0 - c_.dampening);
        impl::for_each_chunk(n_, [&](Eigen::Index i, Eigen::Index len) {
            auto p = params.segment(i, len).array();
            auto g = grads.segment(i, len).array();
            if (c_.momentum == 0.0) {
                p -= lr * (g + wd * p);
                return;
            }
            auto b = state_.buffers[0].segment(i, len).array();
            if (first)
                b = g + wd * p;
            else
                b = mu * b + keep * (g + wd * p);
            if (c_.nesterov)
                p -= lr * ((g + wd * p) + mu * b);
            else
                p -= lr * b;
        });
    }

    /// The learning rate.
    double lr() const { return c_.lr; }
    /// Sets the learning rate (finite, ≥ 0; else fmd::invalid_argument naming 'lr').
    void set_lr(double lr) {
        impl::require_nonnegative("nn::SGD", "lr", lr);
        c_.lr = lr;
    }
    /// The configuration (with the current learning rate).
    const SGDConfig& config() const { return c_; }
    /// Number of parameters the optimizer was built for.
    Eigen::Index size() const { return n_; }
    /// Number of steps taken.
    std::int64_t steps() const { return state_.step; }

    /// The optimizer's kind, stored in checkpoints (with or without momentum: the state differs).
    std::string describe() const { return c_.momentum != 0.0 ? "nn::SGD(momentum)" : "nn::SGD"; }

    /// Step count and {momentum_buffer} (no buffer when momentum = 0).
    const OptimizerState<S>& state() const { return state_; }
    /// Restores a state() (same size and buffer count); throws fmd::invalid_argument naming 'state' otherwise.
    void set_state(const OptimizerState<S>& s) {
        impl::check_state("nn::SGD", s, state_.buffers.size(), n_);
        state_ = s;
    }

private:
    SGDConfig c_;
    Eigen::Index n_;
    OptimizerState<S> state_;
};

/// torch.nn.utils.clip_grad_norm_ (L2): returns the global norm ‖g‖ before clipping (accumulated in
/// double) and scales g by max_norm / (‖g‖ + 1e-6) when that factor is below 1.
template <Dense G>
double clip_grad_norm(G&& grads, double max_norm) {
    if (!(max_norm > 0.0) || !std::isfinite(max_norm))
        detail::fail("nn::clip_grad_norm", "max_norm", "must be finite and > 0, got ", max_norm);
    const double norm = std::sqrt(grads.template cast<double>().squaredNorm());
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) grads *= static_cast<scalar_of<G>>(coef);
    return norm;
}

/// Constant learning rate.
struct ConstantLr {
    double value = 1e-3;  ///< the learning rate
    /// The constant rate, whatever the step.
    double lr(std::int64_t /*step*/) const { return value; }
};

/// Linear warm-up then cosine decay to a floor, for step = number of updates already taken:
/// \verbatim
///   step < warmup_steps:            peak_lr·step / warmup_steps          (0 at step 0)
///   warmup_steps ≤ step ≤ total:    min_lr + (peak_lr − min_lr)·(1 + cos(π·p))/2, p = (step − warmup)/(total − warmup)
///   step ≥ total_steps:             min_lr
///
///   fmd::nn::WarmupCosine schedule{.peak_lr = 1e-3, .warmup_steps = 1000, .total_steps = 100000, .min_lr = 1e-5};
///   opt.set_lr(schedule.lr(step));
/// \endverbatim
struct WarmupCosine {
    double peak_lr = 1e-3;         ///< reached at step = warmup_steps
    std::int64_t warmup_steps = 0;  ///< length of the linear warm-up (≥ 0)
    std::int64_t total_steps = 1;  ///< the floor is reached here
    double min_lr = 0.0;           ///< floor

    /// The rate after `step` updates; throws fmd::invalid_argument naming the field when peak_lr, warmup_steps,
    /// total_steps (≤ warmup_steps) or min_lr (outside [0, peak_lr]) is invalid, or 'step' when negative.
    double lr(std::int64_t step) const {
        constexpr std::string_view where = "nn::WarmupCosine";
        impl::require_nonnegative(where, "peak_lr", peak_lr);
        if (warmup_steps < 0) detail::fail(where, "warmup_steps", "must be >= 0, got ", warmup_steps);
        if (total_steps <= warmup_steps)
            detail::fail(where, "total_steps", "must exceed warmup_steps (", warmup_steps, "), got ", total_steps);
        if (!(min_lr >= 0.0 && min_lr <= peak_lr)) detail::fail(where, "min_lr", "must lie in [0, peak_lr], got ", min_lr);
        if (step < 0) detail::fail(where, "step", "must be >= 0, got ", step);
        if (step < warmup_steps) return peak_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
        if (step >= total_steps) return min_lr;
        const double p = static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
        return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
    }
};

}  // namespace fmd::nn

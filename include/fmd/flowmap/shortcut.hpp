#pragma once
// Shortcut models (theory.md §9.5): a step-size-conditioned velocity s_θ(x, t, d) with
// X_{t+d} = x + d·s(x, t, d), trained as a two-time network with r = t + d (so it is a flow map,
// ū(x, t, r) = s(x, t, r − t), sampled by fmd::sample_flow_map). Per batch:
//   - a fraction 1 − fraction_self of the samples trains flow matching at d = 0: target α̇ z + β̇ ε;
//   - the rest trains self-consistency at a step 2d ∈ {2/M, 4/M, …, 1} drawn uniformly over the
//     levels, t uniform on the multiples of 2d below 1:
//       s(x_t, t, 2d) ← sg ½[s(x_t, t, d) + s(x′, t + d, d)],   x′ = x_t + d·s(x_t, t, d),
//     where the finest level (d = 1/M) bootstraps from the instantaneous velocity s(·, ·, 0).
// The loss is the mean squared error per coordinate over the batch.
//
//   fmd::flowmap::Shortcut<float> objective({.max_steps = 128});
//   fmd::train::Trainer trainer(path, objective, net, opt, {.batch_size = 256});   // net: MLP with two_times
#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/flowmap/flow_map.hpp>
#include <fmd/nn/concepts.hpp>
#include <fmd/path/concepts.hpp>

namespace fmd::flowmap {

/// Options of Shortcut (theory.md §9.5).
struct ShortcutOptions {
    long max_steps = 128;           ///< M: the finest step is 1/M (a power of two >= 2)
    double fraction_self = 0.25;    ///< fraction of each batch trained on self-consistency targets
    /// Flow-matching times are uniform in [0, t_max): below 1 for networks singular at t = 1
    /// (flowmap::EndpointFlowMap).
    double t_max = 1.0;
};

/// The shortcut-model objective (train::Objective) for a TwoTimeNetwork on a Gaussian path.
template <class S>
class Shortcut {
public:
    /// Throws fmd::invalid_argument naming 'max_steps' (not a power of two in [2, 2^30]), 'fraction_self'
    /// or 't_max' when out of range.
    explicit Shortcut(ShortcutOptions options = {}) : options_(options) {
        constexpr std::string_view where = "flowmap::Shortcut";
        if (options_.max_steps < 2 || !std::has_single_bit(static_cast<std::uint64_t>(options_.max_steps)) || options_.max_steps > (1L << 30))
            detail::fail(where, "max_steps", "must be a power of two in [2, 2^30], got ", options_.max_steps);
        if (!(options_.fraction_self >= 0.0 && options_.fraction_self <= 1.0))
            detail::fail(where, "fraction_self", "must lie in [0, 1], got ", options_.fraction_self);
        if (!(options_.t_max > 0.0 && options_.t_max <= 1.0)) detail::fail(where, "t_max", "must lie in (0, 1], got ", options_.t_max);
        levels_ = std::countr_zero(static_cast<std::uint64_t>(options_.max_steps));
    }

    /// The options.
    const ShortcutOptions& options() const { return options_; }
    /// The t row of the last step (1 × n).
    const Row<S>& last_t() const { return t_; }
    /// The r row of the last step (1 × n).
    const Row<S>& last_r() const { return r_; }
    /// The last step's regression target (dim × n).
    const Matrix<S>& last_target() const { return target_; }

    /// train::Objective: flow matching at r = t for most columns, the self-consistency target (two half
    /// jumps, no gradient) for a fraction `fraction_self` (theory.md §9.5); leaves ∂L/∂θ in the network and
    /// returns the loss. z, eps: dim × n; labels: one per column or empty.
    template <class Net, class Path, class G>
    S value_and_gradients(Net& net, const Path& path, In<S> z, In<S> eps, Labels labels, G& rng) {
        static_assert(nn::check_two_time_network<Net>());
        static_assert(GaussianProbabilityPath<Path, S>, "fmd::flowmap::Shortcut: the path must be Gaussian (coefficients(t))");
        const Eigen::Index d = z.rows(), n = z.cols();
        resize(d, n);
        const auto m = static_cast<Eigen::Index>(std::llround(options_.fraction_self * static_cast<double>(n)));
        // Times: self-consistency columns 0 … m − 1 on their level's grid; flow matching at d = 0.
        for (Eigen::Index j = 0; j < n; ++j) {
            if (j < m) {
                const auto level = static_cast<long>(uniform01(rng) * static_cast<double>(levels_));  // 2d = 2^−level
                const long cells = 1L << level;
                const auto k = static_cast<long>(uniform01(rng) * static_cast<double>(cells));
                t_(j) = S(static_cast<double>(k) / static_cast<double>(cells));
                r_(j) = S(static_cast<double>(k + 1) / static_cast<double>(cells));
                half_(j) = S(0.5 / static_cast<double>(cells));
            } else {
                t_(j) = S(options_.t_max * uniform01(rng));
                r_(j) = t_(j);
            }
            const PathCoefficients c = path.coefficients(static_cast<double>(t_(j)));
            xt_.col(j) = S(c.alpha) * z.col(j) + S(c.beta) * eps.col(j);
            target_.col(j) = S(c.d_alpha) * z.col(j) + S(c.d_beta) * eps.col(j);
        }
        if (m > 0) bootstrap(net, labels, m);

        forward(net, In<S>(xt_), t_, r_, labels, Out<S>(pred_));
        grad_ = (pred_ - target_) * S(2.0 / static_cast<double>(n * d));
        net.backward(In<S>(grad_));
        return static_cast<S>((pred_ - target_).squaredNorm() / static_cast<double>(n * d));
    }

private:
    // target ← ½[s(x, t, d) + s(x + d·s(x, t, d), t + d, d)] on the first m columns (stop-gradient:
    // plain forwards whose caches the training forward then overwrites).
    template <class Net>
    void bootstrap(Net& net, Labels labels, Eigen::Index m) {
        const double finest = 1.0 / static_cast<double>(options_.max_steps);  // d = 1/M
        for (Eigen::Index j = 0; j < m; ++j) {
            const bool instantaneous = static_cast<double>(half_(j)) <= finest * 1.000001;
            tm_(j) = t_(j);
            rm_(j) = instantaneous ? t_(j) : S(t_(j) + half_(j));
        }
        const Labels sub = labels.empty() ? labels : labels.first(static_cast<std::size_t>(m));
        forward(net, In<S>(xt_.leftCols(m)), tm_.leftCols(m), rm_.leftCols(m), sub, Out<S>(b1_.leftCols(m)));
        for (Eigen::Index j = 0; j < m; ++j) {
            x2_.col(j) = xt_.col(j) + half_(j) * b1_.col(j);
            const bool instantaneous = rm_(j) == tm_(j);
            tm_(j) = t_(j) + half_(j);
            rm_(j) = instantaneous ? tm_(j) : S(tm_(j) + half_(j));
        }
        forward(net, In<S>(x2_.leftCols(m)), tm_.leftCols(m), rm_.leftCols(m), sub, Out<S>(b2_.leftCols(m)));
        target_.leftCols(m) = S(0.5) * (b1_.leftCols(m) + b2_.leftCols(m));
    }

    template <class Net>
    static void forward(Net& net, In<S> x, const RowIn<S>& t, const RowIn<S>& r, Labels labels, Out<S> out) {
        fmd::detail::two_time_forward<S>("flowmap::Shortcut", net, x, t, r, labels, out);
    }

    void resize(Eigen::Index d, Eigen::Index n) {
        if (xt_.rows() == d && xt_.cols() == n) return;
        for (Matrix<S>* a : {&xt_, &x2_, &pred_, &target_, &grad_, &b1_, &b2_}) a->resize(d, n);
        for (Row<S>* a : {&t_, &r_, &half_, &tm_, &rm_}) a->resize(n);
    }

    ShortcutOptions options_;
    int levels_ = 0;
    Matrix<S> xt_, x2_, pred_, target_, grad_, b1_, b2_;
    Row<S> t_, r_, half_, tm_, rm_;
};

}  // namespace fmd::flowmap

#pragma once
// The training loop of theory.md §6 as one object: data source + path + time sampler + loss +
// network + optimizer, with policies for the learning rate, the gradients (clipping) and a weight
// average (EMA). train_step allocates nothing once the first step has sized the batch buffers.
//
// Each template argument is checked against its concept first (docs/concepts.md); a type that
// misses a member gets one static_assert naming the concept and the member.
//
// Paths: a GaussianProbabilityPath trains with any Loss (the target is c_z z + c_ε ε, computed
// without a buffer); any other ProbabilityPath trains with velocity losses, against the path's
// own conditional velocity.
//
// L is a Loss, or an Objective that runs the network itself (train/objective.hpp: MeanFlow,
// shortcut and consistency models); the trainer then draws no times and builds no x_t.
//
// Labelled data (theory.md §6.9, guided training for CFG): a source with
// sample(out, std::span<int> labels, rng) and a ConditionalNetwork train u_θ(x, t, y); each label is
// replaced by the network's null label ∅ with probability label_dropout (default 0.1), so one
// network learns u_t(x|y) and u_t(x|∅) for fmd::Guided.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/parallel.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/coupling/couplings.hpp>
#include <fmd/loss/losses.hpp>
#include <fmd/loss/time_sampler.hpp>
#include <fmd/nn/concepts.hpp>
#include <fmd/nn/optim.hpp>
#include <fmd/path/concepts.hpp>
#include <fmd/train/checkpoint.hpp>
#include <fmd/train/objective.hpp>

namespace fmd::train {

/// Options of Trainer (C++20 designated initializers).
struct TrainerOptions {
    Eigen::Index batch_size = 64;        ///< samples per step (≥ 1)
    double ema_decay = 0.0;              ///< 0 = no EMA; e.g. 0.999 keeps ema ← d·ema + (1 − d)·θ (replace with set_average_policy)
    std::optional<double> clip_norm{};   ///< clip gradients to this global L2 norm (replace with set_gradient_policy)
    std::function<double(std::int64_t)> lr_schedule{};  ///< lr for the update about to be taken (or set_lr_schedule)
    double label_dropout = 0.1;          ///< labelled training: P(label → null label) per sample (theory.md §6.9)
    /// Stop with fmd::numerical_error when a step's loss or gradient is not finite (checked before the
    /// optimizer touches the weights) or an update makes the weights non-finite. Costs two passes
    /// over the parameter buffer per step (the gradient pass also gives StepInfo::grad_norm); turn
    /// off only where divergence is handled elsewhere.
    bool check_finite = true;
};

/// A data source: fills a dim x n batch with samples of p_data.
template <class D, class S>
concept DataSource = requires(const D& d, Matrix<S>& out, Rng& rng) { d.sample(out, rng); };

/// A labelled data source: fills a dim x n batch with samples z_j ~ p_data and labels[j] = y_j.
template <class D, class S>
concept LabelledDataSource = requires(const D& d, Matrix<S>& out, std::span<int> labels, Rng& rng) { d.sample(out, labels, rng); };

/// A source of (data, noise) pairs — a fixed coupling such as reflow pairs (train/reflow.hpp):
/// the trainer uses the given noise instead of drawing (and coupling) its own.
template <class D, class S>
concept PairedSource = requires(const D& d, Matrix<S>& z, Matrix<S>& eps, Rng& rng) { d.sample(z, eps, rng); };

/// A gradient policy: transforms the gradient buffer in place before the update (clipping,
/// noise, …) and returns the global L2 norm it saw before changing it (NaN if it does not compute one).
template <class P, class S>
concept GradientPolicy = requires(P& p, Eigen::Ref<Vector<S>> grads) {
    { p(grads) } -> std::convertible_to<double>;
};

/// A gradient reducer (data-parallel training, train/mpi.hpp): combines the step's gradients
/// (in place) and loss with those of the other processes and returns the combined loss; it runs
/// right after the backward pass, before the finite checks and the gradient policy.
template <class R, class S>
concept GradientReducer = requires(R& r, Eigen::Ref<Vector<S>> grads, double loss) {
    { r(grads, loss) } -> std::convertible_to<double>;
};

/// A weight-average policy: updates the average `avg` from the parameters after update number `step` (1, 2, …).
template <class P, class S>
concept AveragePolicy = requires(P& p, Eigen::Ref<Vector<S>> avg, const Eigen::Ref<const Vector<S>>& params, std::int64_t step) {
    p(avg, params, step);
};

/// Optional network description stored in checkpoints (falls back to the parameter count).
template <class Net>
std::string architecture_of(const Net& net) {
    if constexpr (requires { { net.describe() } -> std::convertible_to<std::string>; }) return net.describe();
    else return "network with " + std::to_string(net.parameter_count()) + " parameters";
}

/// Optional optimizer description stored in checkpoints (empty when the optimizer has none, and
/// then not compared on restore).
template <class Opt>
std::string optimizer_of(const Opt& opt) {
    if constexpr (requires { { opt.describe() } -> std::convertible_to<std::string>; }) return opt.describe();
    else return {};
}

/// Global-norm clipping as a GradientPolicy (torch.nn.utils.clip_grad_norm_).
struct ClipGlobalNorm {
    double max_norm;  ///< the largest global L2 norm kept (> 0)
    /// Clips grads in place; returns their norm before clipping.
    template <class S>
    double operator()(Eigen::Ref<Vector<S>> grads) const { return nn::clip_grad_norm(grads, max_norm); }
};

/// ema ← d·ema + (1 − d)·θ as an AveragePolicy.
struct ExponentialAverage {
    double decay;  ///< d ∈ [0, 1)
    /// One update of avg from params (the step count is unused).
    template <class S>
    void operator()(Eigen::Ref<Vector<S>> avg, const Eigen::Ref<const Vector<S>>& params, std::int64_t) const {
        const S d = S(decay);
        avg = d * avg + (S(1) - d) * params;
    }
};

/// The training loop of theory.md §6 as one object: each train_step draws a batch from a data
/// source, pairs it with noise, draws per-sample times, regresses the network on the loss's target
/// (or runs an Objective) and takes an optimizer step; see the header comment. Coupling: how each
/// batch's noise is paired with its data (coupling/couplings.hpp); the default Independent draws ε
/// and uses it as is.
template <class Path, class L, class Net, class Opt, class TimeSampler = time_sampler::Uniform, class Coupling = coupling::Independent>
class Trainer {
    static_assert(nn::check_network<Net>());

public:
    using S = typename Net::Scalar;  ///< the network's scalar

private:
    static_assert(nn::check_optimizer<Opt, S>());
    static_assert(check_path<Path, S>());
    static constexpr bool objective = Objective<L, Net, Path, S>;
    static_assert(loss::Loss<L> || objective,
                  "fmd::train::Trainer: L must model fmd::loss::Loss (static `prediction` and `coefficients(const PathCoefficients&)`) "
                  "or fmd::train::Objective (`value_and_gradients(net, path, z, eps, labels, rng)`)");
    static_assert(time_sampler::TimeSampler<TimeSampler, S>, "fmd::train::Trainer: missing `void operator()(Row<S>& t, Rng& rng) const` on the time sampler");
    static_assert(coupling::Coupling<Coupling, S>,
                  "fmd::train::Trainer: the coupling needs `Index pool_size(Index) const` and `void couple(pool, z, labels, eps, rng)` (coupling/couplings.hpp)");
    static constexpr bool velocity_loss() {
        if constexpr (objective) return true;
        else return L::prediction == Prediction::velocity;
    }
    static_assert(GaussianProbabilityPath<Path, S> || velocity_loss(),
                  "fmd::train::Trainer: a path without coefficients(t) (not Gaussian) trains velocity losses only (its target is the path's conditional velocity)");

public:
    /// Holds the path, loss, options, time sampler and coupling by value and the network and optimizer by
    /// reference; throws fmd::invalid_argument naming 'batch_size' (< 1), 'ema_decay' (outside [0, 1)),
    /// 'clip_norm' (not finite and > 0) or 'label_dropout' (outside [0, 1]).
    Trainer(Path path, L loss, Net& net, Opt& opt, TrainerOptions options = {}, TimeSampler times = {}, Coupling coupling = {})
        : path_(std::move(path)), loss_(std::move(loss)), net_(&net), opt_(&opt), options_(std::move(options)), times_(std::move(times)),
          coupling_(std::move(coupling)) {
        detail::require_positive_count("train::Trainer", "batch_size", options_.batch_size);
        if (!(options_.ema_decay >= 0.0 && options_.ema_decay < 1.0)) detail::fail("train::Trainer", "ema_decay", "must lie in [0, 1), got ", options_.ema_decay);
        if (options_.clip_norm && !(*options_.clip_norm > 0.0 && std::isfinite(*options_.clip_norm))) detail::fail("train::Trainer", "clip_norm", "must be finite and > 0, got ", *options_.clip_norm);
        if (!(options_.label_dropout >= 0.0 && options_.label_dropout <= 1.0)) detail::fail("train::Trainer", "label_dropout", "must lie in [0, 1], got ", options_.label_dropout);
        if (options_.ema_decay > 0.0) set_average_policy(ExponentialAverage{options_.ema_decay});
        if (options_.clip_norm) set_gradient_policy(ClipGlobalNorm{*options_.clip_norm});
        if (options_.lr_schedule) lr_ = options_.lr_schedule;
    }

    /// Replaces the learning-rate schedule (any nn::LrSchedule: lr(step) for the update about to be taken).
    template <nn::LrSchedule Sched>
    void set_lr_schedule(Sched schedule) {
        lr_ = [schedule = std::move(schedule)](std::int64_t step) { return static_cast<double>(schedule.lr(step)); };
    }
    /// Replaces the gradient policy (default: ClipGlobalNorm when clip_norm is set, else none).
    template <GradientPolicy<S> P>
    void set_gradient_policy(P policy) {
        gradients_ = [policy = std::move(policy)](Eigen::Ref<Vector<S>> g) mutable { return static_cast<double>(policy(g)); };
    }
    /// Installs a gradient reducer (train/mpi.hpp's DataParallel does; one at a time).
    template <GradientReducer<S> R>
    void set_gradient_reducer(R reducer) {
        reducer_ = [reducer = std::move(reducer)](Eigen::Ref<Vector<S>> g, double loss) mutable { return static_cast<double>(reducer(g, loss)); };
    }

    /// Replaces the weight-average policy (default: ExponentialAverage when ema_decay > 0, else
    /// none); the average starts from the current parameters when there was none.
    template <AveragePolicy<S> P>
    void set_average_policy(P policy) {
        average_ = [policy = std::move(policy)](Eigen::Ref<Vector<S>> a, const Eigen::Ref<const Vector<S>>& p, std::int64_t step) mutable {
            policy(a, p, step);
        };
        if (ema_.size() == 0) ema_ = net_->parameters();
    }

    /// One optimizer step on a fresh batch drawn from `source`; returns the batch loss.
    /// A LabelledDataSource with a ConditionalNetwork trains on (z, y) with label dropout.
    template <class Source, class G>
    S train_step(const Source& source, G& rng) {
        static_assert(DataSource<Source, S> || LabelledDataSource<Source, S> || PairedSource<Source, S>,
                      "fmd::train::Trainer::train_step: the source needs `void sample(Matrix<S>& out, Rng& rng) const` "
                      "(or, labelled, `void sample(Matrix<S>& out, std::span<int> labels, Rng& rng) const`; or, paired, "
                      "`void sample(Matrix<S>& z, Matrix<S>& eps, Rng& rng) const`)");
        size_batch();
        if constexpr (PairedSource<Source, S>) {
            source.sample(batch_, batch_eps_, rng);
            return step_on_pairs(batch_, batch_eps_, rng);
        } else if constexpr (LabelledDataSource<Source, S> && nn::ConditionalNetwork<Net, S>) {
            source.sample(batch_, std::span<int>(batch_labels_), rng);
            return step_on(batch_, Labels(batch_labels_), rng);
        } else {
            source.sample(batch_, rng);
            return step_on(batch_, rng);
        }
    }

    /// One optimizer step on the given data batch z (dim x n); ε (through the coupling) and t are drawn from rng.
    template <class G>
    S step_on(In<S> z, G& rng) {
        size_buffers(z);
        draw_noise(z, {}, rng);
        return update(z, false, rng);
    }

    /// One optimizer step on given (data, noise) pairs, column j of z with column j of eps (a fixed
    /// coupling: reflow pairs); only t is drawn.
    template <class G>
    S step_on_pairs(In<S> z, In<S> eps, G& rng) {
        detail::require_same_shape("train::Trainer::step_on_pairs", "z", z, "eps", eps);
        size_buffers(z);
        eps_ = eps;
        return update(z, false, rng);
    }

    /// One optimizer step on a labelled batch (z, y), one label per column of z; each label becomes
    /// the null label with probability label_dropout (drawn from rng first, then ε and t).
    template <class G>
    S step_on(In<S> z, Labels labels, G& rng) {
        static_assert(nn::ConditionalNetwork<Net, S>, "fmd::train::Trainer::step_on(z, labels, rng): the network must model fmd::nn::ConditionalNetwork");
        if (static_cast<Eigen::Index>(labels.size()) != z.cols())
            detail::fail("train::Trainer::step_on", "labels", "must hold one label per column of z (", z.cols(), "), got ", labels.size());
        size_buffers(z);
        const int null = net_->null_label();
        for (std::size_t j = 0; j < labels.size(); ++j)
            if (labels[j] < 0 || labels[j] >= null)
                detail::fail("train::Trainer::step_on", "labels", "must lie in [0, ", null, ") (", null,
                             " is the null label, set by label_dropout), got ", labels[j], " at column ", j);
        const double p = options_.label_dropout;
        for (std::size_t j = 0; j < labels.size(); ++j) labels_[j] = (p > 0.0 && uniform01(rng) < p) ? null : labels[j];
        draw_noise(z, labels, rng);  // a coupling pairs within the true classes
        return update(z, true, rng);
    }

    std::int64_t step() const { return step_; }       ///< training steps taken (restored from checkpoints)
    Net& network() { return *net_; }                  ///< the network being trained
    const Path& path() const { return path_; }        ///< the probability path
    /// Weight average (empty without an average policy); copy it into the network to sample with it.
    const Vector<S>& ema() const { return ema_; }
    const TrainerOptions& options() const { return options_; }  ///< the options
    /// The coupling policy (e.g. ExactOT::last_cost() of the last batch).
    const Coupling& coupling() const { return coupling_; }
    /// Global L2 norm of the last step's gradients before the gradient policy changed them (NaN when
    /// neither check_finite nor a gradient policy computed it).
    double last_grad_norm() const { return grad_norm_; }

private:
    /// ε for the batch: drawn directly (Independent), or a pool drawn and coupled to z.
    template <class G>
    void draw_noise(In<S> z, Labels labels, G& rng) {
        if constexpr (std::is_same_v<Coupling, coupling::Independent>) {
            fill_normal(eps_, rng);
        } else {
            const Eigen::Index want = coupling_.pool_size(z.cols());
            if (pool_.rows() != z.rows() || pool_.cols() != want) pool_.resize(z.rows(), want);
            fill_normal(pool_, rng);
            coupling_.couple(pool_, z, labels, eps_, rng);
        }
    }

    template <class G>
    S update(In<S> z, bool labelled, G& rng) {
        if constexpr (objective)
            return apply(static_cast<S>(loss_.value_and_gradients(*net_, path_, z, In<S>(eps_), labelled ? Labels(labels_) : Labels{}, rng)));
        else
            return apply(loss_and_gradients(z, labelled, rng));
    }

    template <class G>
    S loss_and_gradients(In<S> z, bool labelled, G& rng) {
        times_(t_, rng);
        constexpr bool gaussian = GaussianProbabilityPath<Path, S>;
        if constexpr (gaussian) {  // x_t = α z + β ε from the coefficients alone; the loss forms its own target
            for (Eigen::Index j = 0; j < z.cols(); ++j) {
                const PathCoefficients c = path_.coefficients(static_cast<double>(t_(j)));
                xt_.col(j) = S(c.alpha) * z.col(j) + S(c.beta) * eps_.col(j);
            }
        } else
            path_.sample(z, eps_, t_, xt_, target_, rng);
        if constexpr (nn::ConditionalNetwork<Net, S>) {
            if (labelled)
                net_->forward(In<S>(xt_), t_, Labels(labels_.data(), labels_.size()), Out<S>(pred_));
            else
                net_->forward(In<S>(xt_), t_, Out<S>(pred_));
        } else {
            net_->forward(In<S>(xt_), t_, Out<S>(pred_));
        }
        S value;
        if constexpr (gaussian)
            value = loss::value_and_gradient(loss_, path_, pred_, z, eps_, t_, grad_);
        else
            value = loss::value_and_gradient_to(loss_, path_, pred_, target_, t_, grad_);
        net_->backward(In<S>(grad_));
        return value;
    }

    static constexpr Eigen::Index check_grain = Eigen::Index{1} << 16;  // elements per thread of the finite checks
    template <class V>
    static bool all_finite(const V& v) {
        return parallel_sum(v.size(), check_grain, [&](Eigen::Index lo, Eigen::Index hi) { return v.segment(lo, hi - lo).allFinite() ? 0.0 : 1.0; }) == 0.0;
    }

    // The update from the gradients in the network: finite checks, gradient policy, optimizer, average.
    S apply(S value) {
        constexpr const char* where = "train::Trainer::train_step";
        if (reducer_) value = static_cast<S>(reducer_(net_->gradients(), static_cast<double>(value)));
        if (options_.check_finite && !std::isfinite(static_cast<double>(value)))
            detail::fail_numerical(where, "loss", "is not finite (", value, ") at step ", step_ + 1,
                                   "; the weights were not updated (diverging? lower the learning rate or clip gradients; or the batch holds NaN/Inf)");
        grad_norm_ = gradients_ ? gradients_(net_->gradients()) : std::numeric_limits<double>::quiet_NaN();
        if (options_.check_finite) {
            // One pass: the norm is finite iff every entry is (a policy that computes no norm returns NaN).
            if (std::isnan(grad_norm_)) {  // split across threads: memory-bound passes over every parameter
                const auto g = net_->gradients();
                grad_norm_ = std::sqrt(parallel_sum(g.size(), check_grain, [&](Eigen::Index lo, Eigen::Index hi) {
                    return static_cast<double>(g.segment(lo, hi - lo).squaredNorm());
                }));
            }
            if (!std::isfinite(grad_norm_))
                detail::fail_numerical(where, "gradients", "are not finite (or their norm overflows) at step ", step_ + 1, "; the weights were not updated");
        }
        if (lr_) opt_->set_lr(lr_(step_));
        opt_->step(net_->parameters(), net_->gradients());
        if (options_.check_finite && !all_finite(net_->parameters()))
            detail::fail_numerical(where, "parameters", "became non-finite in the update of step ", step_ + 1,
                                   " (the learning rate is too large for these gradients); restore the last checkpoint");
        ++step_;
        if (average_) average_(ema_, net_->parameters(), step_);
        return value;
    }

public:

    /// Everything needed to continue bit-identically: parameters, optimizer state, EMA, step, rng.
    ///
    /// Reproducibility: the same seed, build, batch size and number of Eigen threads
    /// (Eigen::nbThreads(), OMP_NUM_THREADS) give bit-identical parameters, with or without a
    /// checkpoint and resume in between. A different thread count gives results equal only up to
    /// rounding: Eigen's matrix product chooses its cache blocking, and so the order of each dot
    /// product's partial sums, from the thread count (seen from width 512, or from batch ~1000 at
    /// smaller widths, where an inner dimension exceeds one cache block). Resume with the thread
    /// count you trained with when bits matter (tests/threads/reproducibility.cpp).
    template <class G>
    Checkpoint<S> checkpoint(const G& rng) const {
        static_assert(nn::check_stateful_optimizer<Opt, S>());
        Checkpoint<S> c;
        c.architecture = architecture_of(*net_);
        c.optimizer = optimizer_of(*opt_);
        c.parameters = net_->parameters();
        const auto& st = opt_->state();
        c.optimizer_state = st.buffers;
        c.optimizer_step = static_cast<std::uint64_t>(st.step);
        if (ema_.size()) c.extra.push_back(ema_);
        c.step = static_cast<std::uint64_t>(step_);
        std::ostringstream os;
        os << rng;
        c.rng_state = os.str();
        return c;
    }

    /// Restores a checkpoint. Validates everything first: on error nothing is changed.
    template <class G>
    void restore(const Checkpoint<S>& c, G& rng) {
        static_assert(nn::check_stateful_optimizer<Opt, S>());
        constexpr const char* where = "train::Trainer::restore";
        if (c.architecture != architecture_of(*net_)) detail::fail(where, "checkpoint", "was written by a different architecture ('", c.architecture, "' vs '", architecture_of(*net_), "')");
        const std::string optimizer = optimizer_of(*opt_);
        if (!c.optimizer.empty() && !optimizer.empty() && c.optimizer != optimizer)
            detail::fail(where, "checkpoint", "was written with a different optimizer ('", c.optimizer, "' vs '", optimizer, "')");
        if (c.parameters.size() != net_->parameter_count()) detail::fail(where, "checkpoint", "has ", c.parameters.size(), " parameters, the network ", net_->parameter_count());
        if (c.step > ckpt::max_step || c.optimizer_step > ckpt::max_step) detail::fail(where, "checkpoint", "holds a step count above 2^63 - 1");
        auto finite = [&](const Vector<S>& v) {
            if (!v.allFinite()) detail::fail(where, "checkpoint", "holds non-finite weights or optimizer state (NaN or Inf)");
        };
        finite(c.parameters);
        for (const auto& v : c.optimizer_state) finite(v);
        for (const auto& v : c.extra) finite(v);
        if (c.extra.size() != (ema_.size() ? 1u : 0u) || (ema_.size() && c.extra[0].size() != ema_.size())) detail::fail(where, "checkpoint", "EMA weights do not match this trainer's ema_decay setting");
        G restored = rng;
        std::istringstream is(c.rng_state);
        is >> restored;
        if (!is) detail::fail(where, "checkpoint", "holds an unreadable generator state");
        nn::OptimizerState<S> st;
        st.step = static_cast<std::int64_t>(c.optimizer_step);
        st.buffers = c.optimizer_state;
        opt_->set_state(st);  // validates sizes before changing anything
        net_->parameters() = c.parameters;
        if (ema_.size()) ema_ = c.extra[0];
        step_ = static_cast<std::int64_t>(c.step);
        rng = restored;
    }

private:
    void size_buffers(const In<S>& z) {
        if (z.rows() == xt_.rows() && z.cols() == xt_.cols()) return;
        const auto d = z.rows(), n = z.cols();
        xt_.resize(d, n);
        eps_.resize(d, n);
        if constexpr (!GaussianProbabilityPath<Path, S>) target_.resize(d, n);
        pred_.resize(d, n);
        grad_.resize(d, n);
        t_.resize(n);
        labels_.resize(static_cast<std::size_t>(n));
    }
    void size_batch() {
        const auto d = net_->input_dim(), n = options_.batch_size;
        if (batch_.rows() != d || batch_.cols() != n) batch_.resize(d, n);
        if (batch_eps_.rows() != d || batch_eps_.cols() != n) batch_eps_.resize(d, n);
        batch_labels_.resize(static_cast<std::size_t>(n));
    }

    Path path_;
    L loss_;
    Net* net_;
    Opt* opt_;
    TrainerOptions options_;
    TimeSampler times_;
    Coupling coupling_;
    std::function<double(std::int64_t)> lr_;
    std::function<double(Eigen::Ref<Vector<S>>)> gradients_;
    std::function<double(Eigen::Ref<Vector<S>>, double)> reducer_;
    std::function<void(Eigen::Ref<Vector<S>>, const Eigen::Ref<const Vector<S>>&, std::int64_t)> average_;
    double grad_norm_ = std::numeric_limits<double>::quiet_NaN();
    Matrix<S> batch_, batch_eps_, pool_, xt_, eps_, pred_, grad_, target_;
    Row<S> t_;
    Vector<S> ema_;
    std::vector<int> batch_labels_, labels_;  // drawn labels; labels after dropout
    std::int64_t step_ = 0;
};

}  // namespace fmd::train

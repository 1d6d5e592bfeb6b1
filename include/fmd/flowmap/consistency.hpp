#pragma once
// Consistency models (theory.md §9.3): the consistency function f(x_t, t) is the t = 1 endpoint of
// the probability-flow ODE through x_t. Parameterized by a one-time network F as
//   f_θ(x, t) = x + (1 − t)·F_θ(x, t)          (c_skip = 1, c_out = 1 − t: f(x, 1) = x exactly),
// so F_θ(x, t) is the average velocity ū(x, t, 1) and a consistency model is a flow map to r = 1.
//
//   ConsistencyFlowMap       f as an fmd::FlowMap: to r = 1 one jump; to r < 1 the deterministic
//                            re-noising jump X_r = α_r x̂ + β_r ε̂ (x̂ = f(x, t), ε̂ = (x − α_t x̂)/β_t)
//   sample_consistency       the paper's multistep sampler: x̂ = f(x, t_0); x ← α_{t_k} x̂ + β_{t_k} ε_k,
//                            x̂ = f(x, t_k), with fresh noise ε_k (NFE = number of times)
//   ConsistencyTraining      training without a teacher, the improved recipe: the target is the same
//                            network at the neighbouring, less noisy level, stop-gradient (no EMA
//                            teacher); pseudo-Huber distance; a discretization curriculum N(k) doubling
//                            from s0 to s1; log-normal sampling of the noise level; weight 1/(σ_i − σ_{i+1})
//   ConsistencyDistillation  the target is one step of any fmd ODE stepper on a trained teacher field
//
// Noise levels live on grid::edm (Karras's ρ-grid in this library's time, σ = β_t/α_t; its last
// point is t = 1, where the target is x itself). Both objectives are train::Objective's for a
// one-time nn::Network; their step counter drives the curriculum (restore it with set_step after
// resuming a checkpoint). Nothing is allocated per step except when the curriculum changes the
// discretization (log2(s1/s0) times in a run).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/flowmap/flow_map.hpp>
#include <fmd/nn/concepts.hpp>
#include <fmd/path/concepts.hpp>
#include <fmd/solver/concepts.hpp>
#include <fmd/solver/grid.hpp>

namespace fmd::flowmap {

/// f(x, t) = x + (1 − t)·F(x, t) for a batch at one time (out may not alias x).
template <class S, class Net>
void consistency_endpoint(Net& net, In<S> x, double t, Out<S> out) {
    net(x, t, out);
    out = x + S(1.0 - t) * out;
}

/// A consistency model seen as a flow map (see the header comment); holds the path by value.
template <class S, class Net, class Path>
class ConsistencyFlowMap {
public:
    /// Holds the consistency network (F, with f = x + (1 − t)F) by reference and the Gaussian path by value.
    ConsistencyFlowMap(Net& net, Path path) : net_(&net), path_(std::move(path)) {}
    /// ū(x, t, r) for a dim × n batch, 0 ≤ t < r ≤ 1: the jump to the endpoint x̂ = f(x, t), re-noised to
    /// level r with the noise implied by x (theory.md §9.3). Throws fmd::invalid_argument naming 'r'
    /// when r = t, or 't' when β_t = 0.
    void operator()(In<S> x, double t, double r, Out<S> out) {
        constexpr std::string_view where = "flowmap::ConsistencyFlowMap";
        detail::check_jump(where, t, r);
        if (r == t) detail::fail(where, "r", "must be > t (a consistency model predicts jumps, not velocities), got t = r = ", t);
        if (r == 1.0) {  // ū(x, t, 1) = F(x, t)
            (*net_)(x, t, out);
            return;
        }
        if (xhat_.rows() != x.rows() || xhat_.cols() != x.cols()) xhat_.resize(x.rows(), x.cols());
        consistency_endpoint<S>(*net_, x, t, Out<S>(xhat_));
        const PathCoefficients a = path_.coefficients(t), b = path_.coefficients(r);
        if (!(a.beta != 0.0)) detail::fail(where, "t", "has β_t = 0: no noise to re-use at t = ", t);
        // X_r = α_r x̂ + β_r (x − α_t x̂)/β_t, ū = (X_r − x)/(r − t)
        const double k = b.beta / a.beta;
        out = (S(b.alpha - k * a.alpha) * xhat_ + S(k - 1.0) * x) / S(r - t);
    }

private:
    Net* net_;
    Path path_;
    Matrix<S> xhat_;
};

/// Multistep consistency sampling in place: times t_0 < t_1 < … in [0, 1) are the noise levels
/// jumped from; x holds noise at t_0 on entry and the sample on return. NFE = times.size().
template <class S, class Net, class Path, class G, class Obs = NoObserver>
SolveStats sample_consistency(Net& net, const Path& path, Matrix<S>& x, const std::vector<double>& times, G& rng, Matrix<S>& work,
                              Obs&& observer = {}) {
    constexpr std::string_view where = "flowmap::sample_consistency";
    detail::require_nonempty(where, "x", x);
    if (times.empty()) detail::fail(where, "times", "must hold at least one noise level");
    for (std::size_t k = 0; k < times.size(); ++k) {
        if (!(times[k] >= 0.0 && times[k] < 1.0)) detail::fail(where, "times", "point ", k, " = ", times[k], " is outside [0, 1)");
        if (k > 0 && !(times[k] > times[k - 1])) detail::fail(where, "times", "must be strictly increasing, but point ", k, " = ", times[k], " follows ", times[k - 1]);
    }
    if (work.rows() != x.rows() || work.cols() != x.cols()) work.resize(x.rows(), x.cols());
    SolveStats stats;
    for (std::size_t k = 0; k < times.size(); ++k) {
        const double t = times[k];
        if (k > 0) {  // re-noise the last prediction (in x) to level t
            const PathCoefficients c = path.coefficients(t);
            fill_normal(work, rng);
            x = S(c.alpha) * x + S(c.beta) * work;
        }
        observer(t, std::as_const(x));
        consistency_endpoint<S>(net, In<S>(x), t, Out<S>(work));
        x.swap(work);
        ++stats.nfe;
        ++stats.steps;
    }
    observer(1.0, std::as_const(x));
    return stats;
}

/// Options of ConsistencyTraining and ConsistencyDistillation (theory.md §9.3).
struct ConsistencyOptions {
    long s0 = 10;                  ///< initial number of discretization steps
    long s1 = 1280;                ///< final number (the curriculum doubles from s0 up to s1)
    long total_steps = 100000;     ///< training steps the curriculum spans (K)
    double p_mean = -1.1;          ///< log-normal noise-level sampling: log σ ~ N(p_mean, p_std²)
    double p_std = 2.0;  ///< standard deviation of log σ
    double huber_c = 0.0;          ///< pseudo-Huber c; 0 → 0.00054·√dim
    grid::EdmOptions edm{};        ///< σ range and ρ of the discretization
};

}  // namespace fmd::flowmap

namespace fmd::detail {
/// The discretization shared by training and distillation: grid times, σ_i = β/α, sampling CDF.
struct ConsistencyLevels {
    using ConsistencyOptions = flowmap::ConsistencyOptions;
    std::vector<double> t, sigma, cdf;
    long steps = 0;

    template <class Path>
    void build(const Path& path, long n, const ConsistencyOptions& o) {
        if (n == steps) return;
        t = grid::edm(path, n, o.edm);
        steps = n;
        sigma.resize(t.size());
        for (std::size_t i = 0; i < t.size(); ++i) {
            const PathCoefficients c = path.coefficients(t[i]);
            sigma[i] = i + 1 == t.size() ? 0.0 : c.beta / c.alpha;
        }
        // P(i) ∝ Φ((log σ_i − m)/s) − Φ((log σ_{i+1} − m)/s) (σ_{i+1} < σ_i), as a cumulative table.
        cdf.resize(static_cast<std::size_t>(n));
        auto phi = [&](double sg) { return sg <= 0.0 ? 0.0 : 0.5 * std::erfc(-(std::log(sg) - o.p_mean) / (o.p_std * std::sqrt(2.0))); };
        double acc = 0.0;
        for (long i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i);
            acc += std::max(0.0, phi(sigma[k]) - phi(sigma[k + 1]));
            cdf[k] = acc;
        }
        if (!(acc > 0.0)) fail("flowmap::ConsistencyTraining", "p_mean", "puts no mass on the discretization's σ range");
    }
    template <class G>
    std::size_t draw(G& rng) const {
        const double u = uniform01(rng) * cdf.back();
        const auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
        return std::min(static_cast<std::size_t>(it - cdf.begin()), cdf.size() - 1);
    }
};

/// The pseudo-Huber c: the option, or 0.00054·√dim (the improved recipe's default).
inline double huber_c(const flowmap::ConsistencyOptions& o, Eigen::Index dim) {
    return o.huber_c > 0.0 ? o.huber_c : 0.00054 * std::sqrt(static_cast<double>(dim));
}

inline void check_consistency_options(std::string_view where, const flowmap::ConsistencyOptions& o) {
    if (o.s0 < 1) fail(where, "s0", "must be >= 1, got ", o.s0);
    if (o.s1 < o.s0 || o.s1 > 1'000'000) fail(where, "s1", "must lie in [s0, 10^6], got ", o.s1);
    if (o.total_steps < 1) fail(where, "total_steps", "must be >= 1, got ", o.total_steps);
    if (!std::isfinite(o.p_mean)) fail(where, "p_mean", "must be finite, got ", o.p_mean);
    if (!(o.p_std > 0.0 && std::isfinite(o.p_std))) fail(where, "p_std", "must be finite and > 0, got ", o.p_std);
    if (!(o.huber_c >= 0.0 && std::isfinite(o.huber_c))) fail(where, "huber_c", "must be finite and >= 0, got ", o.huber_c);
}
}  // namespace fmd::detail

namespace fmd::flowmap {

/// Shared loss: Δ = f_θ(x_a, t_a) − target, L = (1/n) Σ λ_j (√(‖Δ_j‖² + c²) − c). Computes the
/// gradient with respect to F_θ's output (f = x + (1 − t) F) into grad and runs backward.
template <class S>
struct ConsistencyLoss {
    /// \var ConsistencyLoss::xa
    /// x at level t_a, d × n.
    /// \var ConsistencyLoss::xb
    /// x at level t_b, d × n.
    /// \var ConsistencyLoss::ta_f
    /// F_θ(x_a, t_a), d × n.
    /// \var ConsistencyLoss::target
    /// The stop-gradient target f_θ(x_b, t_b), d × n.
    /// \var ConsistencyLoss::grad
    /// ∂L/∂F_θ(x_a, t_a), d × n.
    Matrix<S> xa, xb, ta_f, target, grad;
    /// \var ConsistencyLoss::ta
    /// Per-column levels t_a, 1 × n.
    /// \var ConsistencyLoss::tb
    /// Per-column levels t_b > t_a, 1 × n.
    /// \var ConsistencyLoss::lambda
    /// Per-column weights λ = 1/(σ_a − σ_b), 1 × n.
    Row<S> ta, tb, lambda;

    /// Sizes the workspaces for a d × n batch (no allocation when the size is unchanged).
    void resize(Eigen::Index d, Eigen::Index n) {
        if (xa.rows() == d && xa.cols() == n) return;
        for (Matrix<S>* m : {&xa, &xb, &ta_f, &target, &grad}) m->resize(d, n);
        for (Row<S>* r : {&ta, &tb, &lambda}) r->resize(n);
    }

    // target ← sg f_θ(xb, tb); f(x, 1) = x without a network call.
    /// target ← f_θ(x_b, t_b) with no gradient (stop-gradient; f(x, 1) = x).
    template <class Net>
    void targets(Net& net) {
        net.forward(In<S>(xb), tb, Out<S>(target));
        for (Eigen::Index j = 0; j < xb.cols(); ++j) target.col(j) = xb.col(j) + (S(1) - tb(j)) * target.col(j);
    }

    /// L = (1/n) Σ λ_j (√(‖Δ_j‖² + c²) − c) with Δ = f_θ(x_a, t_a) − target; runs the forward and the
    /// backward pass (gradients accumulate into the network) and returns L.
    template <class Net>
    S value_and_backward(Net& net, double c) {
        const Eigen::Index n = xa.cols();
        net.forward(In<S>(xa), ta, Out<S>(ta_f));
        double sum = 0.0;
        for (Eigen::Index j = 0; j < n; ++j) {
            const S w = S(1) - ta(j);
            grad.col(j) = xa.col(j) + w * ta_f.col(j) - target.col(j);
            const double e = static_cast<double>(grad.col(j).squaredNorm()), root = std::sqrt(e + c * c);
            sum += static_cast<double>(lambda(j)) * (root - c);
            // ∂/∂F = (1 − t) λ Δ / √(‖Δ‖² + c²) / n
            grad.col(j) *= S(static_cast<double>(w) * static_cast<double>(lambda(j)) / (root > 0.0 ? root : 1.0) / static_cast<double>(n));
        }
        net.backward(In<S>(grad));
        return static_cast<S>(sum / static_cast<double>(n));
    }
};

/// Consistency training (train::Objective): pairs of levels (t_i, t_{i+1}) from one (z, ε).
template <class S>
class ConsistencyTraining {
public:
    /// Throws fmd::invalid_argument naming the option when s0, s1, total_steps, p_std, huber_c or the EDM range are invalid.
    explicit ConsistencyTraining(ConsistencyOptions options = {}) : options_(options) {
        detail::check_consistency_options("flowmap::ConsistencyTraining", options_);
    }
    /// Discretization steps N(k) = min(s0·2^⌊k/K′⌋, s1), K′ = ⌊K/(log2⌊s1/s0⌋ + 1)⌋ at training step k.
    long discretization(std::int64_t k) const {
        const auto doublings = static_cast<long>(std::floor(std::log2(static_cast<double>(options_.s1) / static_cast<double>(options_.s0))));
        const long per = std::max(1L, options_.total_steps / (doublings + 1));
        const long e = std::min(static_cast<long>(std::max<std::int64_t>(k, 0) / per), doublings);
        return std::min(options_.s1, options_.s0 << e);
    }
    /// The training step k the curriculum is at.
    std::int64_t step() const { return step_; }
    /// Sets the curriculum step (the trainer does on restore).
    void set_step(std::int64_t k) { step_ = k; }
    /// The level times t_0 < … < t_N of the last step's discretization.
    const std::vector<double>& levels() const { return levels_.t; }

    /// train::Objective: draws a level pair (t_i, t_{i+1}) per column, forms both points from the same
    /// (z, ε) (dim × n each), and leaves ∂L/∂θ in the network; returns the loss. Labels must be empty
    /// (fmd::invalid_argument naming 'labels'); the path must be Gaussian.
    template <class Net, class Path, class G>
    S value_and_gradients(Net& net, const Path& path, In<S> z, In<S> eps, Labels labels, G& rng) {
        static_assert(nn::check_network<Net>());
        static_assert(GaussianProbabilityPath<Path, S>, "fmd::flowmap::ConsistencyTraining: the path must be Gaussian (coefficients(t))");
        if (!labels.empty()) detail::fail("flowmap::ConsistencyTraining", "labels", "are not supported (train unconditionally)");
        const Eigen::Index d = z.rows(), n = z.cols();
        levels_.build(path, discretization(step_), options_);
        loss_.resize(d, n);
        for (Eigen::Index j = 0; j < n; ++j) {
            const std::size_t i = levels_.draw(rng);
            const double ta = levels_.t[i], tb = levels_.t[i + 1];
            const PathCoefficients a = path.coefficients(ta), b = path.coefficients(tb);
            loss_.xa.col(j) = S(a.alpha) * z.col(j) + S(a.beta) * eps.col(j);
            loss_.xb.col(j) = S(b.alpha) * z.col(j) + S(b.beta) * eps.col(j);
            loss_.ta(j) = S(ta);
            loss_.tb(j) = S(tb);
            loss_.lambda(j) = S(1.0 / (levels_.sigma[i] - levels_.sigma[i + 1]));
        }
        loss_.targets(net);
        ++step_;
        return loss_.value_and_backward(net, detail::huber_c(options_, d));
    }

private:
    ConsistencyOptions options_;
    detail::ConsistencyLevels levels_;
    ConsistencyLoss<S> loss_;
    std::int64_t step_ = 0;
};

/// Consistency distillation (train::Objective): x_{t_{i+1}} is one step of `stepper` on the teacher
/// field from x_{t_i}. One interval i per batch (drawn like ConsistencyTraining's), so the stepper
/// advances the whole batch in one call and nothing is allocated after the first step. The
/// discretization is fixed: options.s0 steps (s1 and total_steps are unused).
template <class S, class Teacher, class Stepper>
class ConsistencyDistillation {
public:
    /// Holds the teacher field by reference and the stepper by value; throws as ConsistencyTraining's constructor.
    ConsistencyDistillation(Teacher& teacher, Stepper stepper, ConsistencyOptions options = {.s0 = 18})
        : teacher_(&teacher), stepper_(std::move(stepper)), options_(options) {
        static_assert(VectorField<Teacher, S>, "fmd::flowmap::ConsistencyDistillation: the teacher must be an fmd::VectorField");
        static_assert(solver::OdeStepper<Stepper>, "fmd::flowmap::ConsistencyDistillation: the stepper must model fmd::solver::OdeStepper");
        detail::check_consistency_options("flowmap::ConsistencyDistillation", options_);
    }
    /// The level times t_0 < … < t_N (N = options.s0).
    const std::vector<double>& levels() const { return levels_.t; }

    /// train::Objective: one level pair (t_i, t_{i+1}) for the batch, x_{t_{i+1}} one stepper step of the
    /// teacher from x_{t_i}; leaves ∂L/∂θ in the network and returns the loss. Labels must be empty.
    template <class Net, class Path, class G>
    S value_and_gradients(Net& net, const Path& path, In<S> z, In<S> eps, Labels labels, G& rng) {
        static_assert(nn::check_network<Net>());
        static_assert(GaussianProbabilityPath<Path, S>, "fmd::flowmap::ConsistencyDistillation: the path must be Gaussian (coefficients(t))");
        if (!labels.empty()) detail::fail("flowmap::ConsistencyDistillation", "labels", "are not supported (distill unconditionally)");
        const Eigen::Index d = z.rows(), n = z.cols();
        levels_.build(path, options_.s0, options_);
        loss_.resize(d, n);
        const std::size_t i = levels_.draw(rng);
        const double ta = levels_.t[i], tb = levels_.t[i + 1];
        const PathCoefficients a = path.coefficients(ta);
        loss_.xa = S(a.alpha) * z + S(a.beta) * eps;
        loss_.xb = loss_.xa;
        stepper_.step(*teacher_, Out<S>(loss_.xb), ta, tb - ta);
        loss_.ta.setConstant(S(ta));
        loss_.tb.setConstant(S(tb));
        loss_.lambda.setConstant(S(1.0 / (levels_.sigma[i] - levels_.sigma[i + 1])));
        loss_.targets(net);
        return loss_.value_and_backward(net, detail::huber_c(options_, d));
    }

private:
    Teacher* teacher_;
    Stepper stepper_;
    ConsistencyOptions options_;
    detail::ConsistencyLevels levels_;
    ConsistencyLoss<S> loss_;
};

}  // namespace fmd::flowmap

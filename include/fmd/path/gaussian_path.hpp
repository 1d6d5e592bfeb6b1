#pragma once
// Gaussian probability path x_t = α_t z + β_t ε (theory.md §3.2–§3.4) and the exact
// conversions between velocity, score, ε- and x1-prediction (theory.md §5.2).
#include <cmath>
#include <utility>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/path/concepts.hpp>
#include <fmd/path/prediction.hpp>
#include <fmd/schedule/concepts.hpp>

namespace fmd {

/// out = a·x + b·in: every conversion of theory.md §5.2 has this form.
struct Affine {
    /// \var Affine::a
    /// Coefficient of x.
    /// \var Affine::b
    /// Coefficient of the input prediction.
    double a, b;
};

/// Coefficients (a, b) of out = a·x + b·in converting a prediction `from` into `to` at a time
/// with path coefficients c (theory.md §5.2), for any Gaussian path. Throws fmd::invalid_argument
/// naming 't' at a singular point (theory.md §5.3): α = 0 (t = 0) for conversions out of ε̂ or s
/// into x̂1 or u, β = 0 (t = 1) for conversions out of x̂1 or into s, D = 0 for conversions out of
/// u, and wherever a coefficient is infinite (β̇ = −∞ for VP and Sqrt at t = 1).
inline Affine conversion(const PathCoefficients& c, Prediction from, Prediction to, double t) {
    const double al = c.alpha, be = c.beta, da = c.d_alpha, db = c.d_beta, D = c.D();
    using P = Prediction;
    auto guard = [&](double denominator, const char* what) {
        if (denominator == 0.0 || !std::isfinite(denominator))
            detail::fail("GaussianPath::conversion", "t", "is a singular point of the conversion from ", name(from), " to ", name(to), ": ", what,
                         " = ", denominator, " at t = ", t, " (theory.md §5.3)");
        return denominator;
    };
    if (from == to) return {0.0, 1.0};
    const Affine m = [&]() -> Affine {
        switch (from) {
            case P::x1:
                guard(be, "β");
                if (to == P::epsilon) return {1.0 / be, -al / be};
                if (to == P::velocity) return {db / be, D / be};
                return {-1.0 / (be * be), al / (be * be)};  // score
            case P::epsilon:
                if (to == P::score) return {0.0, -1.0 / guard(be, "β")};
                guard(al, "α");
                if (to == P::x1) return {1.0 / al, -be / al};
                return {da / al, -D / al};  // velocity
            case P::velocity: {
                if (to == P::score) {
                    const double bD = guard(c.beta_D(), "βD");
                    return {-da / bD, al / bD};
                }
                guard(D, "D");
                if (to == P::x1) return {-db / D, be / D};
                return {da / D, -al / D};  // epsilon
            }
            case P::score:
                if (to == P::epsilon) return {0.0, -be};
                guard(al, "α");
                if (to == P::x1) return {1.0 / al, be * be / al};
                return {da / al, c.beta_D() / al};  // velocity
        }
        return {0.0, 1.0};
    }();
    // A finite denominator can still meet an infinite derivative (VP or Sqrt at t = 1: β̇ = −∞;
    // Polynomial(n < 1) at t = 0: α̇ = ∞): the conversion is singular there too.
    if (!std::isfinite(m.a) || !std::isfinite(m.b))
        detail::fail("GaussianPath::conversion", "t", "is a singular point of the conversion from ", name(from), " to ", name(to),
                     ": its coefficients are not finite (", m.a, ", ", m.b, ") at t = ", t, " (theory.md §5.3)");
    return m;
}

/// The conversion on any GaussianProbabilityPath (its coefficients at t), t checked to lie in [0, 1].
template <class Path>
Affine conversion(const Path& path, Prediction from, Prediction to, double t) {
    detail::require_time("GaussianPath::conversion", "t", t);
    return conversion(static_cast<PathCoefficients>(path.coefficients(t)), from, to, t);
}

/// Gaussian probability path x_t = α_t z + β_t ε from noise ε (t = 0) to data z (t = 1) for any
/// Schedule (theory.md §3.2–§3.4): sampling, conditional velocity and score, and the exact
/// prediction conversions (theory.md §5.2). A GaussianProbabilityPath; a few doubles, held by value.
template <schedule::Schedule Sched>
class GaussianPath {
public:
    using schedule_type = Sched;  ///< the schedule type

    /// A default-constructed schedule.
    GaussianPath() = default;
    /// The path of schedule `s`.
    explicit GaussianPath(Sched s) : schedule_(std::move(s)) {}

    /// The schedule α_t, β_t.
    const Sched& schedule() const { return schedule_; }

    /// α_t, β_t, α̇_t, β̇_t and ββ̇ at t (the schedule's own beta_d_beta where it has one).
    PathCoefficients coefficients(double t) const {
        PathCoefficients c{static_cast<double>(schedule_.alpha(t)), static_cast<double>(schedule_.beta(t)),
                           static_cast<double>(schedule_.d_alpha(t)), static_cast<double>(schedule_.d_beta(t)), 0.0};
        // A schedule may give ββ̇ itself (schedule::Schedule docs); otherwise it is the product.
        if constexpr (requires { schedule_.beta_d_beta(t); }) c.beta_d_beta = static_cast<double>(schedule_.beta_d_beta(t));
        else c.beta_d_beta = c.beta * c.d_beta;
        return c;
    }

    /// x_t = α_t z + β_t ε per column, t a 1 x n row (theory.md §3.2).
    template <Dense Z, Dense E, Dense T, Dense O>
    void sample(const Z& z, const E& eps, const T& t, O&& xt) const {
        using S = scalar_of<Z>;
        check_batch("GaussianPath::sample", z, eps, t, xt);
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            const auto c = coefficients(static_cast<double>(t(j)));
            xt.col(j) = S(c.alpha) * z.col(j) + S(c.beta) * eps.col(j);
        }
    }

    /// Both at once, the ProbabilityPath call: x_t = α_t z + β_t ε and u_t = α̇_t z + β̇_t ε per
    /// column (one pass; `rng` is unused: the path has no randomness beyond ε).
    template <Dense Z, Dense E, Dense T, Dense O, Dense U, class G>
    void sample(const Z& z, const E& eps, const T& t, O&& xt, U&& ut, G& /*rng*/) const {
        using S = scalar_of<Z>;
        check_batch("GaussianPath::sample", z, eps, t, xt);
        detail::require_same_shape("GaussianPath::sample", "z", z, "ut", ut);
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            const auto c = coefficients(static_cast<double>(t(j)));
            xt.col(j) = S(c.alpha) * z.col(j) + S(c.beta) * eps.col(j);
            ut.col(j) = S(c.d_alpha) * z.col(j) + S(c.d_beta) * eps.col(j);
        }
    }

    /// u_t(x_t|z) = α̇_t z + β̇_t ε on the path (theory.md §3.3); the CFM target.
    template <Dense Z, Dense E, Dense T, Dense O>
    void conditional_velocity(const Z& z, const E& eps, const T& t, O&& out) const {
        using S = scalar_of<Z>;
        check_batch("GaussianPath::conditional_velocity", z, eps, t, out);
        for (Eigen::Index j = 0; j < z.cols(); ++j) {
            const auto c = coefficients(static_cast<double>(t(j)));
            out.col(j) = S(c.d_alpha) * z.col(j) + S(c.d_beta) * eps.col(j);
        }
    }

    /// ∇log p_t(x_t|z) = −ε/β_t on the path (theory.md §3.4); singular where β_t = 0.
    template <Dense E, Dense T, Dense O>
    void conditional_score(const E& eps, const T& t, O&& out) const {
        using S = scalar_of<E>;
        constexpr const char* where = "GaussianPath::conditional_score";
        detail::require_nonempty(where, "eps", eps);
        detail::require_same_shape(where, "eps", eps, "out", out);
        check_times(where, t, eps.cols());
        for (Eigen::Index j = 0; j < eps.cols(); ++j) {
            const double beta = coefficients(static_cast<double>(t(j))).beta;
            if (beta == 0.0) detail::fail("GaussianPath::conditional_score", "t", "gives β_t = 0 (t = ", t(j), "): the conditional score is singular there");
            out.col(j) = S(-1.0 / beta) * eps.col(j);
        }
    }

    /// u_t(x|z) = α̇ z + (β̇/β)(x − α z) at an arbitrary x, one time for the batch (theory.md §3.3).
    template <Dense X, Dense Z, Dense O>
    void conditional_velocity_at(const X& x, const Z& z, double t, O&& out) const {
        using S = scalar_of<X>;
        detail::require_time("GaussianPath::conditional_velocity_at", "t", t);
        detail::require_same_shape("GaussianPath::conditional_velocity_at", "x", x, "z", z);
        detail::require_same_shape("GaussianPath::conditional_velocity_at", "x", x, "out", out);
        const auto c = coefficients(t);
        if (c.beta == 0.0) detail::fail("GaussianPath::conditional_velocity_at", "t", "gives β_t = 0: u_t(x|z) is singular there off the path");
        const double r = c.d_beta / c.beta;
        out = S(c.d_alpha - r * c.alpha) * z + S(r) * x;
    }

    /// ∇log p_t(x|z) = −(x − α z)/β² at an arbitrary x (theory.md §3.4).
    template <Dense X, Dense Z, Dense O>
    void conditional_score_at(const X& x, const Z& z, double t, O&& out) const {
        using S = scalar_of<X>;
        detail::require_time("GaussianPath::conditional_score_at", "t", t);
        detail::require_same_shape("GaussianPath::conditional_score_at", "x", x, "z", z);
        detail::require_same_shape("GaussianPath::conditional_score_at", "x", x, "out", out);
        const auto c = coefficients(t);
        if (c.beta == 0.0) detail::fail("GaussianPath::conditional_score_at", "t", "gives β_t = 0: the conditional score is singular there");
        out = S(c.alpha / (c.beta * c.beta)) * z - S(1.0 / (c.beta * c.beta)) * x;
    }

    /// Coefficients (a, b) of out = a·x + b·in converting `from` into `to` at time t
    /// (theory.md §5.2); see fmd::conversion.
    Affine conversion(Prediction from, Prediction to, double t) const {
        detail::require_time("GaussianPath::conversion", "t", t);
        return fmd::conversion(coefficients(t), from, to, t);
    }

    /// out = conversion(from, to, t) applied to a batch at one time; out may alias `in`.
    template <Dense X, Dense I, Dense O>
    void convert(Prediction from, Prediction to, const X& x, const I& in, double t, O&& out) const {
        using S = scalar_of<X>;
        detail::require_same_shape("GaussianPath::convert", "x", x, "in", in);
        detail::require_same_shape("GaussianPath::convert", "x", x, "out", out);
        const Affine m = conversion(from, to, t);
        out = S(m.a) * x + S(m.b) * in;
    }

private:
    template <class A, class B, class T, class O>
    static void check_batch(const char* where, const A& a, const B& b, const T& t, const O& out) {
        detail::require_nonempty(where, "z", a);
        detail::require_same_shape(where, "z", a, "eps", b);
        detail::require_same_shape(where, "z", a, "out", out);
        check_times(where, t, a.cols());
    }
    template <class T>
    static void check_times(const char* where, const T& t, Eigen::Index n) {
        if (t.rows() != 1 || t.cols() != n) detail::fail(where, "t", "must be a 1 x ", n, " row of per-sample times, got ", t.rows(), " x ", t.cols());
        for (Eigen::Index j = 0; j < t.cols(); ++j) detail::require_time(where, "t", static_cast<double>(t(j)));
    }

    Sched schedule_{};
};

}  // namespace fmd

#pragma once
// Explicit ODE steppers of theory.md §7.2 (Euler, midpoint, Heun, RK4). Each owns its stage
// buffers and resizes them only when the batch shape changes.
#include <cmath>

#include <fmd/core/error.hpp>
#include <fmd/core/types.hpp>
#include <fmd/solver/concepts.hpp>

namespace fmd::solver {

namespace detail {
template <class S>
void fit(Matrix<S>& m, const Out<S>& x) {
    if (m.rows() != x.rows() || m.cols() != x.cols()) m.resize(x.rows(), x.cols());
}
template <class S>
Out<S> ref(Matrix<S>& m) {
    return Out<S>(m);
}
/// Every step() checks its times: t finite, h finite and non-zero (negative h integrates
/// backward, as the likelihood does), h > 0 where the method only runs forward.
inline void require_step(const char* where, double t, double h, bool forward_only = false) {
    if (!std::isfinite(t)) fmd::detail::fail(where, "t", "must be finite, got ", t);
    if (!std::isfinite(h) || h == 0.0) fmd::detail::fail(where, "h", "must be finite and non-zero, got ", h);
    if (forward_only && !(h > 0.0)) fmd::detail::fail(where, "h", "must be > 0 (this method only steps forward in time), got ", h);
}
}  // namespace detail

/// X′ = X + h u(X, t). Order 1, 1 NFE.
template <class S = double>
class Euler {
public:
    using Scalar = S;  ///< float or double
    static constexpr int order = 1;  ///< order of accuracy
    static constexpr int nfe_per_step = 1;  ///< field evaluations per step

    /// Advances x (dim × n) in place from t to t + h with the VectorField u; throws fmd::invalid_argument
    /// naming 't' (not finite) or 'h' (not finite or zero).
    template <class F>
    void step(F&& u, Out<S> x, double t, double h) {
        detail::require_step("Euler::step", t, h);
        detail::fit(k1_, x);
        u(In<S>(x), t, detail::ref(k1_));
        x += S(h) * k1_;
    }

private:
    Matrix<S> k1_;
};

/// X′ = X + h u(X + (h/2) u(X, t), t + h/2). Order 2, 2 NFE.
template <class S = double>
class Midpoint {
public:
    using Scalar = S;  ///< float or double
    static constexpr int order = 2;  ///< order of accuracy
    static constexpr int nfe_per_step = 2;  ///< field evaluations per step

    /// Advances x (dim × n) in place from t to t + h with the VectorField u; throws fmd::invalid_argument
    /// naming 't' (not finite) or 'h' (not finite or zero).
    template <class F>
    void step(F&& u, Out<S> x, double t, double h) {
        detail::require_step("Midpoint::step", t, h);
        detail::fit(k_, x);
        detail::fit(y_, x);
        u(In<S>(x), t, detail::ref(k_));
        y_ = x + S(h / 2) * k_;
        u(In<S>(y_), t + h / 2, detail::ref(k_));
        x += S(h) * k_;
    }

private:
    Matrix<S> k_, y_;
};

/// X̃ = X + h u(X, t); X′ = X + (h/2)[u(X, t) + u(X̃, t + h)]. Order 2, 2 NFE (evaluates at t + h).
template <class S = double>
class Heun {
public:
    using Scalar = S;  ///< float or double
    static constexpr int order = 2;  ///< order of accuracy
    static constexpr int nfe_per_step = 2;  ///< field evaluations per step

    /// Advances x (dim × n) in place from t to t + h with the VectorField u; throws fmd::invalid_argument
    /// naming 't' (not finite) or 'h' (not finite or zero).
    template <class F>
    void step(F&& u, Out<S> x, double t, double h) {
        detail::require_step("Heun::step", t, h);
        detail::fit(k1_, x);
        detail::fit(k2_, x);
        detail::fit(y_, x);
        u(In<S>(x), t, detail::ref(k1_));
        y_ = x + S(h) * k1_;
        u(In<S>(y_), t + h, detail::ref(k2_));
        x += S(h / 2) * (k1_ + k2_);
    }

private:
    Matrix<S> k1_, k2_, y_;
};

/// Classical fourth-order Runge–Kutta. Order 4, 4 NFE (evaluates at t + h).
template <class S = double>
class RK4 {
public:
    using Scalar = S;  ///< float or double
    static constexpr int order = 4;  ///< order of accuracy
    static constexpr int nfe_per_step = 4;  ///< field evaluations per step

    /// Advances x (dim × n) in place from t to t + h with the VectorField u; throws fmd::invalid_argument
    /// naming 't' (not finite) or 'h' (not finite or zero).
    template <class F>
    void step(F&& u, Out<S> x, double t, double h) {
        detail::require_step("RK4::step", t, h);
        detail::fit(k_, x);
        detail::fit(acc_, x);
        detail::fit(y_, x);
        u(In<S>(x), t, detail::ref(k_));  // k1
        acc_ = k_;
        y_ = x + S(h / 2) * k_;
        u(In<S>(y_), t + h / 2, detail::ref(k_));  // k2
        acc_ += S(2) * k_;
        y_ = x + S(h / 2) * k_;
        u(In<S>(y_), t + h / 2, detail::ref(k_));  // k3
        acc_ += S(2) * k_;
        y_ = x + S(h) * k_;
        u(In<S>(y_), t + h, detail::ref(k_));  // k4
        acc_ += k_;
        x += S(h / 6) * acc_;
    }

private:
    Matrix<S> k_, acc_, y_;
};

}  // namespace fmd::solver

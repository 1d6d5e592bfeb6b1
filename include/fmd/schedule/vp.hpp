#pragma once
// Variance-preserving schedule of Song et al.'s VP-SDE in course time, theory.md §4.1, §4.5.
#include <cmath>

#include <fmd/core/error.hpp>
#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

/// α_t = exp(−B(1−t)/2), β_t = √(1 − α_t²), b(s) = β_min + s(β_max − β_min).
/// Boundaries are approximate: α_0 = exp(−(β_min + β_max)/4) > 0 (theory.md §4.3e).
class VP {
public:
    /// α_0 > 0: the boundary values are approximate (theory.md §4.3e).
    static constexpr bool exact_boundaries = false;
    /// β_min, β_max of Song's linear b(s); throws fmd::invalid_argument naming 'beta_min' unless finite and
    /// positive, or 'beta_max' unless finite and >= beta_min.
    explicit VP(double beta_min = 0.1, double beta_max = 20.0) : bmin_(beta_min), bmax_(beta_max) {
        if (!(beta_min > 0.0) || !std::isfinite(beta_min)) detail::fail("schedule::VP", "beta_min", "must be finite and positive, got ", beta_min);
        if (!(beta_max >= beta_min) || !std::isfinite(beta_max)) detail::fail("schedule::VP", "beta_max", "must be finite and >= beta_min, got ", beta_max);
    }
    /// β_min.
    double beta_min() const { return bmin_; }
    /// β_max.
    double beta_max() const { return bmax_; }
    /// Song's b(s) at s = 1 − t: the reverse-SDE σ_t² (theory.md §4.5).
    double b(double t) const { return bmin_ + (1.0 - t) * (bmax_ - bmin_); }
    /// α_t = exp(−B(1 − t)/2), B(s) = β_min s + (β_max − β_min) s²/2.
    double alpha(double t) const { return std::exp(-0.5 * big_b(t)); }
    // −expm1 keeps β accurate near t = 1, where 1 − α² cancels.
    /// β_t = √(1 − α_t²).
    double beta(double t) const { return std::sqrt(-std::expm1(-big_b(t))); }
    /// α̇_t = b(t)·α_t/2.
    double d_alpha(double t) const { return 0.5 * b(t) * alpha(t); }
    /// β̇_t = −b(t)·α_t²/(2β_t); −∞ at t = 1 (use beta_d_beta there).
    double d_beta(double t) const {
        const double a = alpha(t);
        return -0.5 * b(t) * a * a / beta(t);
    }

    /// ββ̇ = −½ b α², finite at t = 1 where β̇ is not (theory.md §4.2).
    double beta_d_beta(double t) const {
        const double a = alpha(t);
        return -0.5 * b(t) * a * a;
    }

private:
    double big_b(double t) const {
        const double s = 1.0 - t;
        return bmin_ * s + 0.5 * (bmax_ - bmin_) * s * s;
    }
    double bmin_, bmax_;
};
static_assert(Schedule<VP>);

}  // namespace fmd::schedule

#pragma once
// A schedule from the user's own α(t), β(t) callables (theory.md §4).
// Derivatives come from forward-mode dual numbers unless the user supplies them.
#include <type_traits>
#include <utility>

#include <fmd/core/dual.hpp>
#include <fmd/schedule/concepts.hpp>

namespace fmd::schedule {

/// Marks "derive this by dual numbers".
struct Derived {};

/// Alpha, Beta: callables of t. Without explicit derivatives they are called with
/// fmd::Dual<double>, so write them generically, e.g.
///   `[](auto t) { using std::sin; return sin(t * 1.5707963267948966); }`
/// (unqualified calls find fmd::sin, fmd::exp, ... for dual arguments).
template <class Alpha, class Beta, class DAlpha = Derived, class DBeta = Derived>
class Custom {
public:
    /// Stores α, β and, when given, their derivatives (Derived: by dual numbers).
    Custom(Alpha a, Beta b, DAlpha da = {}, DBeta db = {})
        : a_(std::move(a)), b_(std::move(b)), da_(std::move(da)), db_(std::move(db)) {}

    /// α_t = alpha(t).
    double alpha(double t) const { return static_cast<double>(a_(t)); }
    /// β_t = beta(t).
    double beta(double t) const { return static_cast<double>(b_(t)); }
    /// α̇_t: the given d_alpha(t), or alpha's derivative by dual numbers.
    double d_alpha(double t) const { return derivative(a_, da_, t); }
    /// β̇_t: the given d_beta(t), or beta's derivative by dual numbers.
    double d_beta(double t) const { return derivative(b_, db_, t); }

private:
    template <class F, class DF>
    static double derivative(const F& f, const DF& df, double t) {
        if constexpr (std::is_same_v<DF, Derived>) {
            static_assert(std::is_invocable_v<const F&, Dual<double>>,
                          "fmd::schedule::Custom: alpha/beta must accept fmd::Dual<double> "
                          "(write them generically) or pass their derivatives explicitly");
            return Dual<double>(f(Dual<double>(t, 1.0))).d;
        } else {
            return static_cast<double>(df(t));
        }
    }
    Alpha a_;
    Beta b_;
    [[no_unique_address]] DAlpha da_;
    [[no_unique_address]] DBeta db_;
};

/// custom(alpha, beta): derivatives by dual numbers.
template <class A, class B>
Custom<A, B> custom(A alpha, B beta) {
    return Custom<A, B>(std::move(alpha), std::move(beta));
}
/// custom(alpha, beta, d_alpha, d_beta): derivatives given.
template <class A, class B, class DA, class DB>
Custom<A, B, DA, DB> custom(A alpha, B beta, DA d_alpha, DB d_beta) {
    return Custom<A, B, DA, DB>(std::move(alpha), std::move(beta), std::move(d_alpha), std::move(d_beta));
}

}  // namespace fmd::schedule

#pragma once
// Forward-mode dual numbers a + b·ε (ε² = 0): derivatives of user schedules (theory.md §4).
#include <cmath>

namespace fmd {

/// Forward-mode dual number v + d·ε with ε² = 0: carries a value and its derivative through
/// arithmetic (schedule::Custom derives α̇, β̇ this way).
template <class T>
struct Dual {
    T v{};  ///< value
    T d{};  ///< derivative

    /// Zero value, zero derivative.
    constexpr Dual() = default;
    /// A value with its derivative (0: a constant); implicit, so constants mix with duals.
    constexpr Dual(T value, T derivative = T(0)) : v(value), d(derivative) {}  // NOLINT: implicit from constants

    /// Arithmetic: values by the usual rules, derivatives by the sum, product and quotient rules.
    ///@{
    friend constexpr Dual operator+(Dual a, Dual b) { return {a.v + b.v, a.d + b.d}; }
    friend constexpr Dual operator-(Dual a, Dual b) { return {a.v - b.v, a.d - b.d}; }
    friend constexpr Dual operator*(Dual a, Dual b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
    friend constexpr Dual operator/(Dual a, Dual b) { return {a.v / b.v, (a.d * b.v - a.v * b.d) / (b.v * b.v)}; }
    friend constexpr Dual operator-(Dual a) { return {-a.v, -a.d}; }
    constexpr Dual& operator+=(Dual b) { return *this = *this + b; }
    constexpr Dual& operator-=(Dual b) { return *this = *this - b; }
    constexpr Dual& operator*=(Dual b) { return *this = *this * b; }
    constexpr Dual& operator/=(Dual b) { return *this = *this / b; }
    ///@}
    /// Comparisons of the values only.
    ///@{
    friend constexpr bool operator<(Dual a, Dual b) { return a.v < b.v; }
    friend constexpr bool operator>(Dual a, Dual b) { return a.v > b.v; }
    friend constexpr bool operator<=(Dual a, Dual b) { return a.v <= b.v; }
    friend constexpr bool operator>=(Dual a, Dual b) { return a.v >= b.v; }
    ///@}
};

/// Elementary functions of dual numbers, found by argument-dependent lookup when user code calls
/// them unqualified (or through `using std::sin;`): f(a) with derivative f'(a.v)·a.d.
///@{
template <class T> Dual<T> sin(Dual<T> a) { return {std::sin(a.v), std::cos(a.v) * a.d}; }
template <class T> Dual<T> cos(Dual<T> a) { return {std::cos(a.v), -std::sin(a.v) * a.d}; }
template <class T> Dual<T> tan(Dual<T> a) { const T c = std::cos(a.v); return {std::tan(a.v), a.d / (c * c)}; }
template <class T> Dual<T> exp(Dual<T> a) { const T e = std::exp(a.v); return {e, e * a.d}; }
template <class T> Dual<T> log(Dual<T> a) { return {std::log(a.v), a.d / a.v}; }
template <class T> Dual<T> sqrt(Dual<T> a) { const T s = std::sqrt(a.v); return {s, a.d / (T(2) * s)}; }
template <class T> Dual<T> pow(Dual<T> a, T p) { return {std::pow(a.v, p), p * std::pow(a.v, p - T(1)) * a.d}; }
template <class T> Dual<T> tanh(Dual<T> a) { const T h = std::tanh(a.v); return {h, (T(1) - h * h) * a.d}; }
template <class T> Dual<T> atan(Dual<T> a) { return {std::atan(a.v), a.d / (T(1) + a.v * a.v)}; }
template <class T> Dual<T> sigmoid(Dual<T> a) { const T s = T(1) / (T(1) + std::exp(-a.v)); return {s, s * (T(1) - s) * a.d}; }
///@}

}  // namespace fmd

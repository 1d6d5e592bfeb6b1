#pragma once
// The Schedule concept (theory.md §3.2, §4): α_t, β_t and their time derivatives, in double.
#include <concepts>

namespace fmd::schedule {

/// Any type with alpha, beta, d_alpha, d_beta of a double time t ∈ [0, 1].
/// The path x_t = α_t z + β_t ε runs from noise (t = 0) to data (t = 1).
/// Optional: `beta_d_beta(t)` = ββ̇ where β̇ is infinite but the product is not (VP, Sqrt at t = 1);
/// conversions and oracles then stay finite there.
template <class S>
concept Schedule = requires(const S& s, double t) {
    { s.alpha(t) } -> std::convertible_to<double>;
    { s.beta(t) } -> std::convertible_to<double>;
    { s.d_alpha(t) } -> std::convertible_to<double>;
    { s.d_beta(t) } -> std::convertible_to<double>;
};

/// True when the schedule promises α_0 = 0, β_0 = 1, α_1 = 1, β_1 = 0 exactly
/// (declared by `static constexpr bool exact_boundaries = true;`).
template <class S>
constexpr bool has_exact_boundaries() {
    if constexpr (requires { S::exact_boundaries; }) return S::exact_boundaries;
    else return false;
}

}  // namespace fmd::schedule

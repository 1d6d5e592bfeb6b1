#pragma once
// Stepper concepts (architecture.md): a stepper advances x in place from t to t + h and owns
// its workspace (sized on first use, so steps allocate nothing).
#include <concepts>

#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

namespace fmd::solver {

/// ODE stepper: st.step(field, x, t, h); S::order is the global order, nfe_per_step the cost.
template <class St>
concept OdeStepper = requires(St& st) {
    typename St::scalar_type;
    { St::order } -> std::convertible_to<int>;
    { St::nfe_per_step } -> std::convertible_to<int>;
} && requires(St& st, Out<typename St::scalar_type> x, double t, double h,
              void (*field)(In<typename St::scalar_type>, double, Out<typename St::scalar_type>)) {
    st.step(field, x, t, h);
};

/// SDE stepper: st.step(drift, x, t, h, rng) for dX = b dt + σ_t dW, σ_t from st.sigma(t).
template <class St>
concept SdeStepper = requires(St& st, double t) {
    typename St::scalar_type;
    { St::nfe_per_step } -> std::convertible_to<int>;
    { st.sigma(t) } -> std::convertible_to<double>;
} && requires(St& st, Out<typename St::scalar_type> x, double t, double h, Rng& rng,
              void (*field)(In<typename St::scalar_type>, double, Out<typename St::scalar_type>)) {
    st.step(field, x, t, h, rng);
};

}  // namespace fmd::solver

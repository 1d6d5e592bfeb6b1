#pragma once
// What a network or field predicts (theory.md §5.1).
#include <string_view>

namespace fmd {

/// What a network or field predicts at (x, t); conversions between them: fmd::conversion (theory.md §5.2).
enum class Prediction {
    velocity,  ///< u_t(x)               (flow matching, CFM loss)
    score,     ///< s_t(x) = ∇log p_t(x)  (score matching, CSM loss)
    epsilon,   ///< ε̂ = E[ε | X_t = x]    (DDPM ε-prediction)
    x1,        ///< x̂1 = E[z | X_t = x]   (data prediction, denoiser)
};

/// The enumerator's name ("velocity", "score", "epsilon", "x1"), used in error messages.
constexpr std::string_view name(Prediction p) {
    switch (p) {
        case Prediction::velocity: return "velocity";
        case Prediction::score: return "score";
        case Prediction::epsilon: return "epsilon";
        case Prediction::x1: return "x1";
    }
    return "?";
}

}  // namespace fmd

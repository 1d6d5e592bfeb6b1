#pragma once
// The Objective concept: a training objective that runs the network itself. train::Trainer hands
// it each batch (data z, noise ε after the coupling, labels after dropout) and applies the
// gradients it leaves in the network with its own optimizer, gradient and average policies, finite
// checks and checkpoints. Flow-map models train this way (flowmap/meanflow.hpp, shortcut.hpp,
// consistency.hpp): their losses need more than one network pass per step.
#include <concepts>

#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/concepts.hpp>

namespace fmd::train {

/// o.value_and_gradients(net, path, z, eps, labels, rng): forward and backward passes for the batch
/// (z, eps: dim x n; labels: one per column after dropout, empty when unlabelled), leaving ∂L/∂θ in
/// net.gradients(); returns the batch loss.
template <class O, class Net, class Path, class S>
concept Objective = requires(O& o, Net& net, const Path& path, In<S> z, In<S> eps, Labels labels, Rng& rng) {
    { o.value_and_gradients(net, path, z, eps, labels, rng) } -> std::convertible_to<S>;
};

}  // namespace fmd::train

#pragma once
// fmd::nn: the built-in time-conditioned MLP, its layers, optimizers, clipping and LR schedules.
#include <fmd/nn/concepts.hpp>
#include <fmd/nn/layers.hpp>
#include <fmd/nn/mlp.hpp>
#include <fmd/nn/optim.hpp>

namespace fmd::nn {
static_assert(Network<MLP<float>, float> && Network<MLP<double>, double>);
static_assert(Optimizer<Adam<float>, float> && Optimizer<AdamW<double>, double> && Optimizer<SGD<float>, float>);
static_assert(LrSchedule<ConstantLr> && LrSchedule<WarmupCosine>);
}  // namespace fmd::nn

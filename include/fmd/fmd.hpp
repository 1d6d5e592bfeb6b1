#pragma once
// fmd: flow matching and diffusion, header-only. Everything in one include.
#include <fmd/core/dual.hpp>
#include <fmd/core/error.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/field/adapters.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/field/empirical.hpp>
#include <fmd/field/gaussian_mixture.hpp>
#include <fmd/loss/losses.hpp>
#include <fmd/loss/time_sampler.hpp>
#include <fmd/metrics/distance.hpp>
#include <fmd/nn/nn.hpp>
#include <fmd/path/gaussian_path.hpp>
#include <fmd/path/prediction.hpp>
#include <fmd/schedule/schedules.hpp>
#include <fmd/solver/solvers.hpp>

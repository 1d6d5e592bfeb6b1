#pragma once
// fmd: flow matching and diffusion, header-only. Everything in one include.
#include <fmd/core/dual.hpp>
#include <fmd/core/error.hpp>
#include <fmd/core/parallel.hpp>
#include <fmd/core/progress.hpp>
#include <fmd/core/random.hpp>
#include <fmd/core/types.hpp>
#include <fmd/coupling/assignment.hpp>
#include <fmd/coupling/couplings.hpp>
#include <fmd/data/dataset.hpp>
#include <fmd/data/toy.hpp>
#include <fmd/field/adapters.hpp>
#include <fmd/field/concepts.hpp>
#include <fmd/field/conditional_mixture.hpp>
#include <fmd/field/empirical.hpp>
#include <fmd/field/gaussian_mixture.hpp>
#include <fmd/field/guidance.hpp>
#include <fmd/flowmap/flow_map.hpp>
#include <fmd/flowmap/consistency.hpp>
#include <fmd/flowmap/endpoint.hpp>
#include <fmd/flowmap/meanflow.hpp>
#include <fmd/flowmap/shortcut.hpp>
#include <fmd/loss/losses.hpp>
#include <fmd/loss/time_sampler.hpp>
#include <fmd/loss/weighting.hpp>
#include <fmd/metrics/distance.hpp>
#include <fmd/metrics/straightness.hpp>
#include <fmd/nn/nn.hpp>
#include <fmd/path/concepts.hpp>
#include <fmd/path/gaussian_path.hpp>
#include <fmd/path/prediction.hpp>
#include <fmd/path/stochastic_interpolant.hpp>
#include <fmd/schedule/schedules.hpp>
#include <fmd/solver/solvers.hpp>
#include <fmd/train/train.hpp>

/// \file
/// Umbrella header: every public header except those with a dependency beyond Eigen:
/// `<fmd/data/idx.hpp>` (zlib), `<fmd/train/mpi.hpp>` (MPI), `<fmd/io/safetensors.hpp>` (nlohmann-json)
/// and `<fmd/torch/…>` (LibTorch).

/// \namespace fmd
/// Flow matching and diffusion: batch types, errors, randomness, probability paths, fields, samplers.
/// A batch is a dim × n matrix, one column per sample; t = 0 is noise, t = 1 is data (theory.md §1).
/// \namespace fmd::schedule
/// Schedules α_t, β_t and their derivatives (theory.md §4).
/// \namespace fmd::loss
/// Regression losses, time weightings and distances (theory.md §6).
/// \namespace fmd::time_sampler
/// Training-time samplers: uniform, logit-normal, discrete (theory.md §6.8).
/// \namespace fmd::solver
/// ODE and SDE steppers and their concepts (theory.md §2, §7).
/// \namespace fmd::grid
/// Time grids 0 = t_0 < … < t_N = 1 for the samplers.
/// \namespace fmd::metrics
/// Distances between sample sets and the straightness of a flow (theory.md §9.2).
/// \namespace fmd::coupling
/// Minibatch couplings between noise and data: independent, exact OT, Sinkhorn (theory.md §9.1).
/// \namespace fmd::flowmap
/// One- and few-step models: flow maps, MeanFlow, shortcut and consistency objectives (theory.md §9.3–§9.5).
/// \namespace fmd::nn
/// Networks, layers, optimizers and learning-rate schedules.
/// \namespace fmd::nn::impl
/// Shared implementation of nn::Adam and nn::AdamW; use those.
/// \namespace fmd::train
/// Trainer, fit loop and callbacks, checkpoints, reflow pairs (theory.md §6, §9.6).
/// \namespace fmd::train::ckpt
/// Byte-level pieces of the checkpoint and pair-file formats: checksum, writer, bounds-checked reader.
/// \namespace fmd::data
/// Toy distributions, finite data sets and the IDX reader / writer.
/// \namespace fmd::mpi
/// Data-parallel training over MPI (`<fmd/train/mpi.hpp>`, target fmd::mpi).

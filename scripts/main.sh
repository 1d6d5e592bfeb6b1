#!/usr/bin/env bash
# The main job: builds the flagship example in Release and runs it; pictures go to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh cmake make g++ libeigen3-dev libstb-dev
cmake --preset release -DFMD_BUILD_TESTS=OFF -DFMD_BUILD_BENCHMARKS=OFF
cmake --build --preset release -j "$(nproc)" --target 01_mixture_sampling
mkdir -p out
./build/release/examples/01_mixture_sampling --out out "$@"

#!/usr/bin/env bash
# The main job: builds the examples in Release and runs the flagship, the checkerboard trainer
# (about 5 minutes on 2 cores; pass --full for the seed's 100 000 steps). The programs write their
# results to out/ and matplotlib draws the pictures there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh cmake ninja-build g++ libeigen3-dev zlib1g-dev libcli11-dev libdnnl-dev python3-matplotlib python3-numpy
cmake --preset release -DFMD_BUILD_TESTS=OFF -DFMD_BUILD_BENCHMARKS=OFF
cmake --build --preset release -j "$(nproc)" --target 01_mixture_sampling 02_checkerboard
mkdir -p out
./build/release/examples/01_mixture_sampling --out out
./build/release/examples/02_checkerboard --out out "$@"
# Debian's interpreter, the one python3-matplotlib is installed for (a python3 earlier in PATH,
# from pyenv or a virtualenv, may not have it).
/usr/bin/python3 examples/plots/01_mixture_sampling.py out
/usr/bin/python3 examples/plots/02_checkerboard.py out

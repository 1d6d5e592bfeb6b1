#!/usr/bin/env bash
# Side-by-side benchmark: the seed's checkerboard workload in fmd, LibTorch (C++) and PyTorch on
# this CPU, the competitors at their best (see compare.py's header).
#   bash benchmarks/compare/run.sh                 speed table, 1 and 2 threads, 2 rounds (~8 minutes)
#   bash benchmarks/compare/run.sh --markdown      the same table in Markdown (for the README)
#   bash benchmarks/compare/run.sh --quality 20000 also trains fmd and PyTorch for 20000 steps and
#                                                  compares the filled-square fraction after 1000 Euler steps
# The LibTorch column needs libtorch-dev (libtorch_compare is built only where CMake finds Torch);
# the peak columns need fmd_peak. Either is skipped when its program is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
# oneDNN: fmd's GEMM; OpenBLAS and BLIS: the other BLAS libraries fmd_peak measures; LibTorch and PyTorch: the competitors.
bash scripts/deps.sh cmake ninja-build g++ libeigen3-dev catch2 libbenchmark-dev libcli11-dev libdnnl-dev libtorch-dev \
  libopenblas0-pthread libblis4-openmp python3-numpy python3-torch
cmake --preset release -DFMD_BUILD_TESTS=OFF -DFMD_BUILD_EXAMPLES=OFF -DFMD_BUILD_BENCHMARKS=ON >/dev/null
targets=(fmd_compare)
available=$(cmake --build --preset release --target help)
for t in libtorch_compare fmd_peak; do
  if grep -q "^$t:" <<<"$available"; then targets+=("$t"); fi
done
cmake --build --preset release -j "$(nproc)" --target "${targets[@]}"
exec /usr/bin/python3 benchmarks/compare/compare.py --fmd build/release/benchmarks/fmd_compare \
  --libtorch build/release/benchmarks/libtorch_compare --peak build/release/benchmarks/fmd_peak "$@"

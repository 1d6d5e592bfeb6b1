#!/usr/bin/env bash
# Side-by-side benchmark: the seed's checkerboard workload in fmd and in PyTorch on this CPU.
#   bash benchmarks/compare/run.sh                 speed table, 1 and 2 threads (a few minutes)
#   bash benchmarks/compare/run.sh --quality 20000 also trains both for 20000 steps and compares
#                                                  the filled-square fraction after 1000 Euler steps
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh cmake make g++ libeigen3-dev catch2 libbenchmark-dev python3-torch libopenblas0-pthread
cmake --preset release -DFMD_BUILD_TESTS=OFF -DFMD_BUILD_EXAMPLES=OFF -DFMD_BUILD_BENCHMARKS=ON >/dev/null
cmake --build --preset release -j "$(nproc)" --target fmd_compare
exec /usr/bin/python3 benchmarks/compare/compare.py --fmd build/release/benchmarks/fmd_compare "$@"

#!/usr/bin/env bash
# The test command: installs what is missing, builds everything with -Werror, runs the suite,
# then installs the package and builds a consumer project against it.
#   scripts/test.sh             developer build (warnings are errors) + package consumer
#   scripts/test.sh --sanitize  also the AddressSanitizer + UBSan build of the suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh cmake ninja-build g++ libeigen3-dev zlib1g-dev catch2 libbenchmark-dev libstb-dev libopenmpi-dev openmpi-bin
jobs=$(nproc)

cmake --preset dev
cmake --build --preset dev -j "$jobs"
ctest --preset dev -j "$jobs"

# Consumer project built against the installed package (find_package(fmd CONFIG REQUIRED)).
rm -rf build/install build/package
cmake --install build/dev --prefix build/install
cmake -G Ninja -S tests/package -B build/package -DCMAKE_PREFIX_PATH="$PWD/build/install" -DCMAKE_BUILD_TYPE=Release
cmake --build build/package -j "$jobs"
./build/package/fmd_consumer

if [[ "${1:-}" == "--sanitize" ]]; then
  cmake --preset sanitize
  cmake --build --preset sanitize -j "$jobs"
  ctest --preset sanitize -j "$jobs"
fi

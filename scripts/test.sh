#!/usr/bin/env bash
# The test command: installs what is missing, builds everything with -Werror, runs the suite,
# then installs the package and builds a consumer project against it.
#   scripts/test.sh             developer build (warnings are errors) + package consumer
#   scripts/test.sh --sanitize  the same build with the main test program under AddressSanitizer +
#                               UBSan (one build instead of two: CI's sanitizer stage); the
#                               allocation, thread and MPI programs stay uninstrumented, since they
#                               measure what the sanitizers would replace
set -euo pipefail
cd "$(dirname "$0")/.."
# Optional parts are tested too: MPI, oneDNN (the network's GEMM backend and bf16 sampling), LibTorch (with OpenBLAS behind it rather than the reference
# BLAS), nlohmann-json for safetensors, and Python with NumPy and torch for the round trips.
bash scripts/deps.sh cmake ninja-build g++ libeigen3-dev zlib1g-dev catch2 libbenchmark-dev libcli11-dev libopenmpi-dev openmpi-bin pkgconf \
  libtorch-dev libopenblas0-pthread libdnnl-dev nlohmann-json3-dev python3-numpy python3-torch
jobs=$(nproc)

sanitize_suite=OFF
[[ "${1:-}" == "--sanitize" ]] && sanitize_suite=ON
cmake --preset dev -DFMD_SANITIZE_SUITE=$sanitize_suite
cmake --build --preset dev -j "$jobs"
ctest --preset dev -j "$jobs"

# The Debian package (cpack -G DEB), unpacked into a scratch root; a consumer project built against
# it through find_package(fmd CONFIG REQUIRED), and the same source through pkg-config.
rm -rf build/debroot build/package
(cd build/dev && cpack -G DEB > /dev/null)
deb=$(ls build/dev/libfmd-dev_*.deb)
dpkg-deb -x "$deb" build/debroot
cmake -G Ninja -S tests/package -B build/package -DCMAKE_PREFIX_PATH="$PWD/build/debroot/usr" -DCMAKE_BUILD_TYPE=Release
cmake --build build/package -j "$jobs"
./build/package/fmd_consumer
flags=$(PKG_CONFIG_PATH="$PWD/build/debroot/usr/share/pkgconfig" pkg-config --define-prefix --cflags fmd)
g++ -O1 $flags tests/package/main.cpp -o build/package/fmd_consumer_pkgconfig
./build/package/fmd_consumer_pkgconfig
echo "package: $(basename "$deb") installs a consumable fmd (CMake and pkg-config)"


#!/usr/bin/env bash
# Fuzz stage of CI: builds the libFuzzer targets with clang (AddressSanitizer + UBSan) and runs
# each on a copy of its committed seed corpus (tests/fuzz/corpus/) for SECONDS (default 60),
# all at once. Any crash, sanitizer report, leak, non-fmd exception or allocation past 512 MB is a
# finding: the reproducer lands in build/fuzz/artifacts/ and the script fails.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/deps.sh cmake ninja-build clang libclang-rt-14-dev libeigen3-dev zlib1g-dev nlohmann-json3-dev
cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release -DFMD_FUZZ=ON \
  -DFMD_BUILD_TESTS=OFF -DFMD_BUILD_EXAMPLES=OFF -DFMD_BUILD_BENCHMARKS=OFF -DFMD_WITH_TORCH=OFF > /dev/null
cmake --build build/fuzz

runs=("fuzz_idx idx_plain" "fuzz_idx idx_gzip" "fuzz_checkpoint checkpoint" "fuzz_pairs pairs" "fuzz_safetensors safetensors")
rm -rf build/fuzz/work build/fuzz/artifacts build/fuzz/logs
mkdir -p build/fuzz/artifacts build/fuzz/logs
pids=()
for run in "${runs[@]}"; do
  read -r target corpus <<<"$run"
  work=build/fuzz/work/$corpus
  mkdir -p "$work"
  cp tests/fuzz/corpus/"$corpus"/* "$work"/
  ./build/fuzz/tests/fuzz/"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/"$corpus"- "$work" > build/fuzz/logs/"$corpus".log 2>&1 &
  pids+=($!)
done
status=0
for i in "${!runs[@]}"; do
  read -r target corpus <<<"${runs[$i]}"
  if wait "${pids[$i]}"; then result=ok; else result=FINDING; status=1; fi
  execs=$(grep -o 'number_of_executed_units: [0-9]*' build/fuzz/logs/"$corpus".log | awk '{print $2}')
  echo "fuzz $corpus ($target): ${execs:-?} executions in ${seconds} s: $result"
  if [[ $result != ok ]]; then tail -40 build/fuzz/logs/"$corpus".log; ls build/fuzz/artifacts; fi
done
exit $status

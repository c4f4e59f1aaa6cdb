#!/bin/bash
# run.sh — build the libFuzzer harness and fuzz the front end.
#   tests/fuzz/run.sh [SECONDS=60] [extra libFuzzer flags...]
# Builds in build-fuzz/ with clang, ASan and UBSan. New inputs go to
# build-fuzz/fuzz-corpus (the committed seeds in tests/fuzz/corpus stay as they are);
# crashes, timeouts and leaks are written to build-fuzz/fuzz-artifacts/.
# One job on one core: the machines this runs on are small.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift || true
build=$root/build-fuzz
# NNC_FUZZ instruments the compiler core too (coverage for the fuzzer).
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DNNC_FUZZ=ON -DNNC_SANITIZE=ON \
  >/dev/null
cmake --build "$build" -j2 --target fuzz_frontend >/dev/null
mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts"
cd "$build"
exec ./fuzz_frontend "$build/fuzz-corpus" "$root/tests/fuzz/corpus" \
  -dict="$root/tests/fuzz/nn.dict" -max_total_time="$secs" -max_len=4096 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1 "$@"

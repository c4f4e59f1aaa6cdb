#!/bin/bash
# run.sh — build a libFuzzer harness and fuzz it.
#   tests/fuzz/run.sh [SECONDS=60] [frontend|loaders|runtime] [extra libFuzzer flags...]
# frontend (the default) fuzzes lexer, parser and sema with .nn text; loaders fuzzes the
# runtime's NPY, IDX, CSV and safetensors parsers (tests/fuzz/fuzz_loaders.c); runtime
# fuzzes decompressed IDX contents, nn_load_weights against a model and batch gathering
# (tests/fuzz/fuzz_runtime.c).
# Builds in build-fuzz/ with clang, ASan and UBSan. New inputs go to
# build-fuzz/fuzz-corpus[-loaders] (the committed seeds stay as they are);
# crashes, timeouts and leaks are written to build-fuzz/fuzz-artifacts[-loaders]/.
# One job on one core: the machines this runs on are small.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift || true
target=frontend
if [[ ${1:-} == frontend || ${1:-} == loaders || ${1:-} == runtime ]]; then target=$1; shift; fi
build=$root/build-fuzz
# NNC_FUZZ instruments the compiler core and runtime too (coverage for the fuzzer).
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DNNC_FUZZ=ON -DNNC_SANITIZE=ON \
  >/dev/null
cmake --build "$build" -j2 --target "fuzz_$target" >/dev/null
cd "$build"
if [[ $target == frontend ]]; then
  mkdir -p fuzz-corpus fuzz-artifacts
  exec ./fuzz_frontend "$build/fuzz-corpus" "$root/tests/fuzz/corpus" \
    -dict="$root/tests/fuzz/nn.dict" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$build/fuzz-artifacts/" -print_final_stats=1 "$@"
fi
if [[ $target == runtime ]]; then
  mkdir -p fuzz-corpus-runtime fuzz-artifacts-runtime
  exec ./fuzz_runtime "$build/fuzz-corpus-runtime" "$root/tests/fuzz/runtime_corpus" \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/fuzz-artifacts-runtime/" -print_final_stats=1 "$@"
fi
mkdir -p fuzz-corpus-loaders fuzz-artifacts-loaders
exec ./fuzz_loaders "$build/fuzz-corpus-loaders" "$root/tests/fuzz/loaders_corpus" \
  "$root/tests/fuzz/loaders_regressions" \
  -dict="$root/tests/fuzz/loaders.dict" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$build/fuzz-artifacts-loaders/" -print_final_stats=1 "$@"

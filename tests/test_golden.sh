#!/bin/bash
# test_golden.sh — nnc's numerics against a float64 PyTorch reference.
#
#   bash tests/test_golden.sh path/to/nnc [case ...]
#   NNC_TARGET=opencl bash tests/test_golden.sh path/to/nnc   (the OpenCL target)
#   NNC_BUILD_FLAGS=--layout=packed bash tests/test_golden.sh path/to/nnc   (extra nnc build flags)
#
# For each tests/golden/<case>/ (made by tests/golden/make_golden.py): build model.nn
# with nnc in a scratch copy of the directory, run it (it predicts, saves pred.npy,
# trains one epoch, saves out.safetensors), then compare with compare.c: predictions
# element by element, weights by the size of their update. No Python needed. On C each
# case is also built with --no-fuse, which must give the same bits as the fused build.
# Exits non-zero on any failure; the last line is "N passed, M failed".
set -u

if [ $# -lt 1 ]; then
  echo "usage: bash tests/test_golden.sh path/to/nnc [case ...]" >&2
  exit 2
fi
NNC=$(realpath "$1")
shift
golden=$(cd "$(dirname "$0")/golden" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

compare=$tmp/compare
if ! ${CC:-cc} -std=c11 -O2 -Wall -o "$compare" "$golden/compare.c" -lm; then
  echo "FAIL: cannot compile tests/golden/compare.c"
  exit 1
fi

# The checker must be able to fail: expected vs itself passes, a perturbed copy and a
# truncated copy do not. (Guards against a compare that reports success regardless.)
selftest() {
  local d=$golden/cnn_sgd st=$tmp/selftest
  mkdir -p "$st"
  cp "$d/out_expected.safetensors" "$st/bumped.safetensors"
  # Overwrite the last float (dense.bias[4]) with 1.0: its update becomes wrong.
  printf '\x00\x00\x80\x3f' | dd of="$st/bumped.safetensors" bs=1 \
    seek=$(( $(stat -c %s "$st/bumped.safetensors") - 4 )) conv=notrunc status=none
  head -c 100 "$d/out_expected.safetensors" > "$st/short.safetensors"
  cp "$d/pred_expected.npy" "$st/bumped.npy"
  printf '\x00\x00\x80\x3f' | dd of="$st/bumped.npy" bs=1 seek=200 conv=notrunc status=none
  "$compare" weights "$d/init.safetensors" "$d/out_expected.safetensors" "$d/out_expected.safetensors" >/dev/null &&
  "$compare" pred "$d/pred_expected.npy" "$d/pred_expected.npy" >/dev/null &&
  ! "$compare" weights "$d/init.safetensors" "$st/bumped.safetensors" "$d/out_expected.safetensors" >/dev/null &&
  ! "$compare" weights "$d/init.safetensors" "$d/init.safetensors" "$d/out_expected.safetensors" >/dev/null &&
  ! "$compare" weights "$d/init.safetensors" "$st/short.safetensors" "$d/out_expected.safetensors" >/dev/null 2>&1 &&
  ! "$compare" pred "$st/bumped.npy" "$d/pred_expected.npy" >/dev/null
}
if ! selftest; then
  echo "FAIL: compare.c self-test (it must pass identical files and fail altered ones)"
  exit 1
fi

if [ $# -gt 0 ]; then
  cases=("$@")
else
  cases=()
  for d in "$golden"/*/; do
    [ -f "$d/model.nn" ] && cases+=("$(basename "$d")")
  done
fi

# A limit per build and per run, against hangs only: a program's first OpenCL run compiles
# its kernels (PoCL, at first launch), which on a loaded 2-core machine has taken over
# 120 s; timeout's SIGTERM then reads as "interrupted" in the log.
limit=400

# rebuild DIR FLAGS...: the case again in DIR, built with FLAGS and run (log in DIR/run.log).
rebuild() {
  local dir=$1
  shift
  mkdir -p "$dir" && cp -r "$src"/. "$dir"/ && rm -f "$dir/pred.npy" "$dir/out.safetensors"
  (cd "$dir" && timeout $limit "$NNC" build model.nn "$@" -o prog && timeout $limit ./prog --quiet) > "$dir/run.log" 2>&1
}

passed=0
failed=0
for c in "${cases[@]}"; do
  src=$golden/$c
  work=$tmp/$c
  echo "== $c"
  if [ ! -f "$src/model.nn" ]; then
    echo "  FAIL: no case $src"
    failed=$((failed + 1))
    continue
  fi
  cp -r "$src" "$work"
  rm -f "$work/pred.npy" "$work/out.safetensors"
  if ! (cd "$work" && timeout $limit "$NNC" build model.nn --target "${NNC_TARGET:-c}" ${NNC_BUILD_FLAGS:-} -o prog) > "$work/build.log" 2>&1; then
    echo "  FAIL: nnc build model.nn:"
    tail -n 15 "$work/build.log" | sed 's/^/    /'
    failed=$((failed + 1))
    continue
  fi
  if ! (cd "$work" && timeout $limit ./prog --quiet) > "$work/run.log" 2>&1; then
    echo "  FAIL: ./prog --quiet:"
    tail -n 15 "$work/run.log" | sed 's/^/    /'
    failed=$((failed + 1))
    continue
  fi
  ok=1
  "$compare" pred "$work/pred.npy" "$work/pred_expected.npy" || ok=0
  "$compare" weights "$work/init.safetensors" "$work/out.safetensors" \
    "$work/out_expected.safetensors" || ok=0
  # The fusion passes change no bits on the C target: the same case built with --no-fuse
  # gives the same predictions and weights. trim_pool.c is the exception: the filter
  # gradients it shortens sum the same terms in other blocks, so where it changes the
  # generated code the fused side of this check is built again with --no-fuse=trim, and the
  # trimmed build answers to the reference alone. (OpenCL builds are slow;
  # test_cross_target compares fused and unfused OpenCL programs.) A forced layout
  # (NNC_BUILD_FLAGS) moves which kernels sum what, fused or not: the default build only.
  if [ "${NNC_TARGET:-c}" = c ] && [ -z "${NNC_BUILD_FLAGS:-}" ]; then
    fused=$work
    (cd "$work" && "$NNC" emit model.nn -o "$tmp/emit_$c" && "$NNC" emit model.nn --no-fuse=trim -o "$tmp/emit_${c}_untrimmed") \
      > /dev/null 2>&1
    if ! diff -rq "$tmp/emit_$c" "$tmp/emit_${c}_untrimmed" > /dev/null; then
      fused=$work/untrimmed
      rebuild "$fused" --no-fuse=trim ||
        { echo "  FAIL: the --no-fuse=trim build:"; tail -n 15 "$fused/run.log" | sed 's/^/    /'; ok=0; }
    fi
    plain=$work/plain
    if ! rebuild "$plain" --no-fuse; then
      echo "  FAIL: the --no-fuse build:"; tail -n 15 "$plain/run.log" | sed 's/^/    /'
      ok=0
    elif ! cmp -s "$fused/pred.npy" "$plain/pred.npy" || ! cmp -s "$fused/out.safetensors" "$plain/out.safetensors"; then
      echo "  FAIL: $c: fused and --no-fuse builds differ"
      ok=0
    fi
  fi
  if [ $ok = 1 ]; then
    passed=$((passed + 1))
  else
    echo "  FAIL: $c differs from the PyTorch reference"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

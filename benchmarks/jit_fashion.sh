#!/bin/bash
# jit_fashion.sh — `nnc run` beside `nnc build` on examples/fashion_cnn.nn:
#   1. stage times (--time-passes) of a cold run (empty cache) up to its first training
#      step, of a warm run (cache hit), and of nnc build cold and warm;
#   2. epoch time of nnc run, of the program nnc build makes, and of the program
#      nnc build --specialize makes (kernels inlined, the pre-JIT way), alternated ROUNDS
#      times, with the weights of run and build compared bit for bit.
#
#   bash benchmarks/jit_fashion.sh [path/to/nnc]      (EPOCHS=1 THREADS=2 ROUNDS=2)
# The machine's load shows in every number: read the ratios of one run side by side.
set -eu
NNC=$(realpath "${1:-build/nnc}")
EPOCHS=${EPOCHS:-1} THREADS=${THREADS:-2} ROUNDS=${ROUNDS:-2}
src=$(cd "$(dirname "$0")/.." && pwd)/examples/fashion_cnn.nn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NNC_CACHE_DIR=$tmp/cache
cd "$tmp"
cp "$src" model.nn

# Runs nnc run until its first training step is reported, then stops it.
to_first_step() {
  "$NNC" run model.nn --time-passes --quiet --threads "$THREADS" 2> err.txt > /dev/null &
  local pid=$!
  until grep -q "first step" err.txt 2> /dev/null; do
    kill -0 $pid 2> /dev/null || break
    sleep 0.02
  done
  kill $pid 2> /dev/null || true
  wait $pid 2> /dev/null || true
  sed 's/^nnc: time: /  /' err.txt
}
echo "== nnc run, cold (empty cache)"
to_first_step
echo "== nnc run, warm (cache hit)"
to_first_step
rm -rf "$NNC_CACHE_DIR"
echo "== nnc build, cold"
"$NNC" build model.nn -o prog --time-passes 2>&1 | sed 's/^nnc: time: /  /'
echo "== nnc build, warm"
"$NNC" build model.nn -o prog --time-passes 2>&1 | sed 's/^nnc: time: /  /'
echo "== nnc build --specialize (kernels compiled inline), cold"
"$NNC" build model.nn -o prog_spec --specialize --time-passes 2>&1 | sed 's/^nnc: time: /  /'

seconds() { grep -o '"seconds":[0-9.]*' | head -1 | cut -d: -f2; }
echo "== $EPOCHS epoch(s) at $THREADS threads, seconds per epoch (training only)"
for r in $(seq "$ROUNDS"); do
  run=$("$NNC" run model.nn --epochs "$EPOCHS" --threads "$THREADS" --seed 1 --json | seconds)
  mv fashion_cnn.safetensors run.safetensors
  built=$(./prog --epochs "$EPOCHS" --threads "$THREADS" --seed 1 --json | seconds)
  mv fashion_cnn.safetensors built.safetensors
  spec=$(./prog_spec --epochs "$EPOCHS" --threads "$THREADS" --seed 1 --json | seconds)
  mv fashion_cnn.safetensors spec.safetensors
  same=different
  cmp -s run.safetensors built.safetensors && same=identical
  spec_same=different
  cmp -s spec.safetensors built.safetensors && spec_same=identical
  echo "  round $r: run $run s, build $built s, build --specialize $spec s;" \
       "run vs build weights $same, --specialize vs build $spec_same"
done

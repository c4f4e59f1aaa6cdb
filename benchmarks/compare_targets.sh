#!/bin/bash
# compare_targets.sh — the same model on the C target and the OpenCL target, side by
# side in one session: seconds per epoch, samples/s, ratio, and test accuracy.
#
#   benchmarks/compare_targets.sh [--model examples/X.nn] [--epochs N] [--device N] [--rounds N]
#
# Both programs run with the same seed; rounds alternate C and OpenCL so that load from
# other processes hits both. Seconds per epoch come from the programs' --json epoch
# records (training plus the validation pass; not start-up, data loading or the OpenCL
# program build, which is cached after the first run).
set -euo pipefail
cd "$(dirname "$0")/.."
model=examples/fashion_cnn.nn epochs=1 device=0 rounds=2 nnc=${NNC:-build/nnc}
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--model FILE.nn] [--epochs N] [--device N] [--rounds N]" >&2; exit 2 ;;
  esac
done
[ -x "$nnc" ] || { echo "error: no nnc at $nnc (cmake --build build, or NNC=PATH)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=$(basename "$model" .nn)
"$nnc" build "$model" -o "$work/c"
"$nnc" build "$model" --target opencl -o "$work/cl"
# One untimed epoch builds (and caches) the OpenCL program outside the timings: PoCL
# compiles each kernel at its first launch, so a run that trains nothing leaves the
# training kernels to the first timed epoch.
(cd "$work" && ./cl --epochs 1 --device "$device" --quiet >/dev/null 2>&1 || true)
field() { grep -o "\"$2\":[-0-9.e+]*" "$1" | tail -1 | cut -d: -f2; }
epoch_seconds() { grep '"epoch"' "$@" | grep -o '"seconds":[0-9.e+-]*' | cut -d: -f2; }
avg_seconds() { epoch_seconds "$1" | awk '{s += $1; n++} END {if (n) printf "%.2f", s / n}'; }
echo "model $model, $epochs epoch(s) per run, $rounds round(s), OpenCL device $device:"
"$nnc" devices 2>/dev/null | grep -E "^  device $device:" || true
printf "%-6s %-8s %12s %14s\n" round target "s/epoch" "val_accuracy"
for r in $(seq 1 "$rounds"); do
  for t in c cl; do
    args=(--epochs "$epochs" --seed 1 --json)
    [ $t = cl ] && args+=(--device "$device")
    (cd "$work" && "./$t" "${args[@]}" >"$t.$r.json" 2>&1) || { echo "FAIL: $t"; tail -3 "$work/$t.$r.json"; exit 1; }
    printf "%-6s %-8s %12s %14s\n" "$r" "$([ $t = c ] && echo C || echo OpenCL)" "$(avg_seconds "$work/$t.$r.json")" \
      "$(grep -o '"val_accuracy":[0-9.e+-]*' "$work/$t.$r.json" | tail -1 | cut -d: -f2)"
  done
done
c=$(epoch_seconds "$work"/c.*.json | sort -n | head -1)
cl=$(epoch_seconds "$work"/cl.*.json | sort -n | head -1)
awk -v c="$c" -v cl="$cl" 'BEGIN { if (cl > 0) printf "best epoch: C %.2f s, OpenCL %.2f s; OpenCL runs at %.2fx the C target'"'"'s samples/s\n", c, cl, c / cl }'

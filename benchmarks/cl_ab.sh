#!/bin/bash
# cl_ab.sh — a model's OpenCL train-step kernels on the kernel library of a git revision
# (a) against the working tree's (b), in one process on the OpenCL device (cl_ab.c):
# microseconds per pipelined launch, ratio a/b, and the whole step.
#
#   benchmarks/cl_ab.sh [--base REV] [--batch N] [--wg N] [--rounds N] MODEL.nn
#
# The model is emitted by the working tree's build/nnc; its work sizes per kernel are the
# generated host's (nnc_launch lines of the train step, n = the batch), at most 64 groups
# (the host's limit on CPU devices).  The machine's other load hits both alike; run it a
# few times.
set -euo pipefail
cd "$(dirname "$0")/.."
base=main batch=32 wg=16 rounds=101
while [ $# -gt 1 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --wg) wg=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--base REV] [--batch N] [--wg N] [--rounds N] MODEL.nn" >&2; exit 2; }
model=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/nnc emit "$model" --target opencl -o "$work/m" >/dev/null
git show "$base:kernels/nn_kernels.cl" > "$work/a.cl"
cc -O2 benchmarks/cl_ab.c -o "$work/cl_ab" -lOpenCL -lm
# nnc_launch(s, K_name, WORK, n) in the train step's functions; WORK in n and nnc_max.
kernels=()
while read -r name expr; do
  expr=${expr//(int64_t)/}
  expr=${expr//n \*/$batch *}
  if [[ $expr =~ ^nnc_max\((.*),\ (.*)\)$ ]]; then
    a=$((${BASH_REMATCH[1]})) b=$((${BASH_REMATCH[2]}))
    w=$((a > b ? a : b))
  else
    w=$(($expr))
  fi
  kernels+=("$name=$w")
done < <(awk '/^static void nnc_(forward_train|backward|update)\(/{on=1} /^}/{on=0}
              on && /nnc_launch\(s, K_/{sub(/.*nnc_launch\(s, K_/, ""); sub(/, n\);$|, 0\);$/, "");
              i=index($0, ", "); print substr($0, 1, i-1), substr($0, i+2)}' "$work/m/model.c")
echo "a: $base, b: the working tree; $model at batch $batch, work-groups of $wg"
"$work/cl_ab" "$work/m/model.cl" "$work/a.cl" kernels/nn_kernels.cl "$batch" "$wg" 64 "$rounds" "${kernels[@]}"

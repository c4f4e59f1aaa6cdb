#!/bin/bash
# cl_pool_ab.sh — the OpenCL pooling kernels (the fused first layer's forward and filter
# gradient, max-pool forward and backward) of a git revision (a) against the working
# tree's (b) on the first OpenCL device, alternated in one process (cl_pool_ab.c).
#
#   benchmarks/cl_pool_ab.sh [--base REV] [--rounds N] [--calls N] [--batch N]
#
# The machine's other load hits both alike; compare the a/b column, not the times.
set -euo pipefail
cd "$(dirname "$0")/.."
base=main rounds=7 calls=50 batch=32
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    *) echo "usage: $0 [--base REV] [--rounds N] [--calls N] [--batch N]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git show "$base:kernels/nn_kernels.cl" > "$work/a.cl"
cc -O2 benchmarks/cl_pool_ab.c -o "$work/cl_pool_ab" -lOpenCL -lm
echo "a: $base, b: the working tree"
"$work/cl_pool_ab" "$work/a.cl" kernels/nn_kernels.cl "$rounds" "$calls" "$batch"

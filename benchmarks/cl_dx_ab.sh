#!/bin/bash
# cl_dx_ab.sh — a convolution's OpenCL data gradient from kernels/nn_kernels.cl of a git
# revision (a) against the working tree's (b), in one process on the first OpenCL device
# (cl_dx_ab.c): the packed form --layout=auto runs, and b's NHWC form for reference.
#
#   benchmarks/cl_dx_ab.sh [--base REV] [--rounds N] [--batch N] [SHAPE]
#
# SHAPE is "n H W C KH KW F SH SW PT PL OH OW"; the default is fashion_cnn's conv2d_1 at
# batch 32 (dy 10x10x64 -> dx 12x12x32). The machine's other load hits all variants
# alike (they alternate launch batch by launch batch); run it a few times.
set -euo pipefail
cd "$(dirname "$0")/.."
base=main rounds=40 batch=10
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    -*) echo "usage: $0 [--base REV] [--rounds N] [--batch N] [n H W C KH KW F SH SW PT PL OH OW]" >&2; exit 2 ;;
    *) break ;;
  esac
done
shape=(32 12 12 32 3 3 64 1 1 0 0 10 10)
[ $# -gt 0 ] && shape=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git show "$base:kernels/nn_kernels.cl" > "$work/a.cl"
cc -O2 -march=native -fopenmp -Ikernels benchmarks/cl_dx_ab.c -o "$work/cl_dx_ab" -lOpenCL -lm
echo "a: $base, b: the working tree"
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} "$work/cl_dx_ab" "$work/a.cl" kernels/nn_kernels.cl "${shape[@]}" "$rounds" "$batch"

#!/bin/bash
# pool_ab.sh — the fused first layer's C kernels of a git revision (a) against the working
# tree's (b), in one process (pool_ab.c): forward and filter gradient, ratio a/b.
#
#   benchmarks/pool_ab.sh [--base REV] [--cc CC] [--threads N] [--calls N] [--width 24|26] [--rounds N]
#
# Each version is compiled in its own translation unit with the kernel library's flags
# (-O2 -march=native, clang with -fno-unroll-loops), so shapes are run-time values as in
# the library. The machine's other load hits both alike; run a few rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
base=main cc=${CC:-cc} threads=1 calls=300 width=24 rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --base) base=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --calls) calls=$2; shift 2 ;;
    --width) width=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--base REV] [--cc CC] [--threads N] [--calls N] [--width 24|26] [--rounds N]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a"
git show "$base:kernels/nn_kernels.h" > "$work/a/nn_kernels.h"
flags=(-O2 -march=native -fopenmp)
case $(basename "$cc") in *clang*) flags+=(-fno-unroll-loops) ;; esac
for v in a b; do
  inc=$([ $v = a ] && echo "$work/a" || echo kernels)
  cat > "$work/k_$v.c" <<C
#include "nn_kernels.h"
#define SHAPE int n, int H, int W, int C, int KH, int KW, int F, int SH, int SW, int PT, int PL, int OH, int OW, int PH, int PW, int QH, int QW
#define PASS n, H, W, C, KH, KW, F, SH, SW, PT, PL, OH, OW, PH, PW, QH, QW
void ${v}_fwd(SHAPE, const float *x, const float *w, const float *b, int act, float *p, float *idx) {
    nnk_conv2d_pool_fwd(PASS, x, w, b, act, p, idx);
}
void ${v}_bwd(SHAPE, const float *x, const float *dp, const float *p, const float *idx, int act, float *dw, float *db) {
    nnk_conv2d_pool_bwd_filter(PASS, x, dp, p, idx, act, dw, db);
}
C
  "$cc" "${flags[@]}" -I"$inc" -c "$work/k_$v.c" -o "$work/k_$v.o"
done
"$cc" "${flags[@]}" benchmarks/pool_ab.c "$work/k_a.o" "$work/k_b.o" -o "$work/pool_ab" -lm
echo "a: $base, b: the working tree, $cc"
for r in $(seq "$rounds"); do "$work/pool_ab" "$threads" "$calls" "$width"; done

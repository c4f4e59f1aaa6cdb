#!/bin/bash
# contention.sh — a built program on shared cores: one fashion_cnn epoch quiet at
# --threads 1 and at its default threads, then the same with two busy processes
# (one per core of this 2-core machine) competing, for each thread wait policy.
#
#   benchmarks/contention.sh [--nnc PATH] [--epochs N] [--policies "passive spin:1000 ..."]
#
# A policy is the environment the program starts with: `passive` is what a built
# program sets for itself (OMP_WAIT_POLICY=passive: a waiting thread sleeps at once),
# `spin:N` sets GOMP_SPINCOUNT=N (spin N rounds, then sleep), `active` spins until
# woken. Seconds are wall time of the whole run (data loading and the final
# evaluation included); the ratio is against the quiet --threads 1 run. The issue's
# bar: contended default threads <= 1.5x quiet --threads 1.
set -euo pipefail
cd "$(dirname "$0")/.."

nnc=build/nnc
epochs=1
policies="passive spin:1000"
while [ $# -gt 0 ]; do
  case $1 in
    --nnc) nnc=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    *) echo "usage: $0 [--nnc PATH] [--epochs N] [--policies LIST]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
busy=()
cleanup() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$nnc" build examples/fashion_cnn.nn -o "$work/fashion_cnn" >/dev/null

# run POLICY THREADS: prints the wall seconds of one run.
run() {
  local env=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT)
  case $1 in
    passive) env+=(OMP_WAIT_POLICY=passive) ;;
    active) env+=(OMP_WAIT_POLICY=active) ;;
    spin:*) env+=(GOMP_SPINCOUNT=${1#spin:}) ;;
  esac
  local t0 t1
  t0=$(date +%s.%N)
  (cd "$work" && "${env[@]}" ./fashion_cnn --epochs "$epochs" --threads "$2" --quiet >/dev/null)
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

base=$(run passive 1)
printf '%-14s %-8s %-8s %8s %6s\n' condition policy threads seconds ratio
printf '%-14s %-8s %-8s %8.1f %6.2f\n' quiet any 1 "$base" 1
for p in $policies; do
  t=$(run "$p" 0)
  printf '%-14s %-8s %-8s %8.1f %6.2f\n' quiet "$p" default "$t" "$(echo "$t / $base" | bc -l)"
done
for i in 1 2; do (while :; do :; done) & busy+=($!); done
for p in $policies; do
  t=$(run "$p" 0)
  printf '%-14s %-8s %-8s %8.1f %6.2f\n' "2 busy procs" "$p" default "$t" "$(echo "$t / $base" | bc -l)"
done

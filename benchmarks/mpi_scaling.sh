#!/bin/bash
# mpi_scaling.sh — data-parallel fashion_cnn (`nnc build --mpi`): samples/s with 1 and 2
# ranks of 1 thread each, the allreduce's time per step against the step's, and what an
# alpha-beta model built from these figures predicts for 8 and 64 hosts on 10 and
# 100 Gb/s links.
#
#   benchmarks/mpi_scaling.sh [--nnc build/nnc] [--epochs N] [--data-dir DIR]
#
# Samples/s: one epoch of examples/fashion_cnn.nn (60000 samples, batch 32, no validation
# pass), from the program's --json epoch time. NNC_MPI_STATS=1 makes rank 0 report the
# mean step time (forward, backward, reduction), the part of it spent waiting for the
# reduction after the backward pass (what the overlap did not hide), and one blocking
# allreduce of the step's gradients alone. benchmarks/mpi_allreduce.c measures allreduce
# time against size over shared memory and over TCP loopback (fitted T = alpha + beta m).
#
# The model (ring allreduce, gradients of M bytes, p hosts, link of L bit/s, per-message
# latency alpha; each rank keeps a batch of 32, i.e. the global batch grows with p, as
# Horovod users scale; no overlap assumed, so it is pessimistic):
#   T_ar(p)   = 2 (p-1) alpha + 2 (p-1)/p * M * 8 / L
#   T_step(p) = T_compute + T_ar(p)          (T_compute: one rank's epoch time / steps)
#   speed-up  = p * T_compute / T_step(p)
set -euo pipefail
cd "$(dirname "$0")/.."
nnc=build/nnc
epochs=1
data_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --nnc) nnc=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--nnc PATH] [--epochs N] [--data-dir DIR]" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none)
# The benchmark model: fashion_cnn without the per-epoch validation pass.
sed 's/, validation_data=(x_test, y_test)//; s/^model.summary()$//; s/^model.save_weights.*$//' \
  examples/fashion_cnn.nn > "$tmp/bench.nn"
"$nnc" build "$tmp/bench.nn" --mpi -o "$tmp/cnn"
mpicc -O2 -o "$tmp/allreduce" benchmarks/mpi_allreduce.c
args=(--epochs "$epochs" --threads 1 --json)
[ -n "$data_dir" ] && args+=(--data-dir "$data_dir")

echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start (shared machine: other jobs run)"
declare -A sps
for n in 1 2; do
  # bash's time counts the CPU time of mpirun's children, the ranks.
  TIMEFORMAT="%U %S"
  { time NNC_MPI_STATS=1 "${MPIRUN[@]}" -np $n "$tmp/cnn" "${args[@]}" > "$tmp/np$n.out" 2> "$tmp/np$n.err"; } 2> "$tmp/cpu$n"
  secs=$(sed -n 's/.*"epoch":'"$epochs"'.*"seconds":\([0-9.]*\).*/\1/p' "$tmp/np$n.out" | tail -n 1)
  sps[$n]=$(awk -v s="$secs" -v e="$epochs" 'BEGIN { printf "%.0f", 60000 * e / s }')
  cpu=$(awk -v e="$epochs" '{ printf "%.2f", ($1 + $2) / (60 * e) }' "$tmp/cpu$n")
  echo "ranks $n (1 thread each): epoch ${secs}s, ${sps[$n]} samples/s, ${cpu} CPU s per 1000 samples (whole run)"
  grep '^nnc-mpi' "$tmp/np$n.err" || true
done
awk -v a="${sps[2]}" -v b="${sps[1]}" 'BEGIN { printf "speed-up 2 ranks / 1 rank: %.2fx (target >= 1.8x)\n", a / b }'

echo "allreduce against size, 2 ranks, shared memory (vader):"
"${MPIRUN[@]}" -np 2 --mca btl self,vader "$tmp/allreduce" | tee "$tmp/shm.txt"
echo "allreduce against size, 2 ranks, TCP loopback:"
"${MPIRUN[@]}" -np 2 --mca btl self,tcp "$tmp/allreduce" | tee "$tmp/tcp.txt"

# The model, from the one-rank step time and the gradients' size; alpha from the TCP fit
# (loopback: a lower bound for a real network; 25 us is a typical 10 GbE TCP figure).
bytes=$(sed -n 's/.*ranks 2 .* bytes \([0-9]*\).*/\1/p' "$tmp/np2.err")
alpha_tcp=$(sed -n 's/^fit alpha_s \([^ ]*\).*/\1/p' "$tmp/tcp.txt")
# One rank's whole step (forward, backward, update, batch assembly): epoch time / steps.
tcompute=$(awk -v s="${sps[1]}" 'BEGIN { print 32 / s }')
echo "model inputs: one rank's time per step of 32 ${tcompute}s; gradients ${bytes} bytes; alpha(TCP loopback) ${alpha_tcp}s"
for alpha in "$alpha_tcp" 25e-6; do
  for gbps in 10 100; do
    for p in 8 64; do
      awk -v a="$alpha" -v L="$gbps" -v p="$p" -v M="$bytes" -v tc="$tcompute" 'BEGIN {
        tar = 2 * (p - 1) * a + 2 * (p - 1) / p * M * 8 / (L * 1e9)
        printf "  alpha %.1e s, %3d Gb/s, %2d hosts: allreduce %.3f ms, step %.3f ms, speed-up %.1fx (efficiency %.0f%%)\n",
               a, L, p, 1e3 * tar, 1e3 * (tc + tar), p * tc / (tc + tar), 100 * tc / (tc + tar) }'
    done
  done
done

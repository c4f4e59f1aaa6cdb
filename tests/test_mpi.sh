#!/bin/bash
# test_mpi.sh — data-parallel training (`nnc build --mpi`) under mpirun.
#
#   bash tests/test_mpi.sh path/to/nnc
#
# 1. The golden models (tests/golden/) under 2 and 3 ranks: the weights of every rank are
#    identical after training (NNC_MPI_CHECK=1), equal to the one-process run within
#    summation-order tolerance, and to the float64 PyTorch reference. Shares are uneven
#    and some ranks get no rows of a last partial batch. BatchNormalization normalizes by
#    each rank's rows (Keras's MirroredStrategy without SyncBatchNormalization), so that
#    case is checked only for equal weights across ranks.
# 2. Same N, same seed: the same bits. The one-process run of an --mpi program gives the
#    bits of a program built without --mpi.
# 3. A failure on one rank stops all, naming the rank; output appears once. The OpenCL
#    target too (where a device is), with 3 ranks.
# 4. An MLP and fashion_cnn on a slice of Fashion-MNIST (6000 training, 2000 test rows,
#    one epoch) reach the same accuracy with 1, 2 and 4 ranks.
# Skipped, saying so, when mpirun is absent.
set -u
NNC=$(realpath "$1")
if ! command -v mpirun >/dev/null 2>&1; then
  echo "skipped: mpirun not found (install openmpi-bin and libopenmpi-dev)"
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
golden=$root/tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Open MPI refuses root without this; the CI machine may have fewer cores than ranks.
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --mca btl self,vader,tcp)
export OMPI_MCA_rmaps_base_oversubscribe=1
failed=0
fail() { echo "  FAIL: $*"; failed=$((failed + 1)); }

compare=$tmp/compare
${CC:-cc} -std=c11 -O2 -o "$compare" "$golden/compare.c" -lm || { echo "FAIL: cannot compile compare.c"; exit 1; }

# --- 1, 2: golden models
# Even shares (cnn_sgd), uneven ones with an empty rank (cnn_adam_strided: batches of 4
# and 2 over 3 ranks), an l2 term added on every rank (mlp_mae_l2), from_logits, and
# BatchNormalization's moving statistics; five cases keep CI short (each build is seconds).
for c in cnn_sgd cnn_adam_strided mlp_mae_l2 mlp_from_logits batchnorm; do
  echo "== golden $c"
  w=$tmp/$c
  cp -r "$golden/$c" "$w"
  if ! (cd "$w" && "$NNC" build model.nn --mpi -o prog) > "$w/build.log" 2>&1; then
    fail "nnc build --mpi:"; tail -n 15 "$w/build.log"; continue
  fi
  (cd "$w" && ./prog --quiet && mv out.safetensors one.safetensors) > "$w/run1.log" 2>&1 ||
    { fail "one process:"; tail "$w/run1.log"; continue; }
  if [ $c = cnn_adam_strided ]; then
    (cd "$w" && "$NNC" build model.nn -o plain && ./plain --quiet && cmp one.safetensors out.safetensors) > "$w/plain.log" 2>&1 ||
      { fail "$c: the --mpi program alone differs from the plain build"; tail "$w/plain.log"; }
  fi
  for n in 2 3; do
    rm -f "$w/out.safetensors"
    if ! (cd "$w" && NNC_MPI_CHECK=1 timeout 120 "${MPIRUN[@]}" -np $n ./prog --quiet) > "$w/run$n.log" 2>&1; then
      fail "mpirun -np $n:"; tail -n 15 "$w/run$n.log"; continue
    fi
    grep -q "weights identical on all $n ranks" "$w/run$n.log" || { fail "$c: ranks' weights differ (np $n)"; cat "$w/run$n.log"; }
    [ "$c" = batchnorm ] && continue
    "$compare" weights "$w/init.safetensors" "$w/out.safetensors" "$w/one.safetensors" > "$w/cmp1.log" ||
      { fail "$c: np $n differs from one process"; cat "$w/cmp1.log"; }
    "$compare" weights "$w/init.safetensors" "$w/out.safetensors" "$w/out_expected.safetensors" > "$w/cmpref.log" ||
      { fail "$c: np $n differs from the PyTorch reference"; cat "$w/cmpref.log"; }
  done
done

# The OpenCL target (PoCL in CI; every rank on the one device): gradients travel through
# host copies. Uneven shares with an empty rank, and moving statistics.
if "$NNC" devices > /dev/null 2>&1; then
  for c in cnn_adam_strided batchnorm; do
    echo "== golden $c, OpenCL, 3 ranks"
    w=$tmp/$c
    (cd "$w" && "$NNC" build model.nn --mpi --target opencl -o prog_cl && rm -f out.safetensors &&
       NNC_MPI_CHECK=1 timeout 300 "${MPIRUN[@]}" -np 3 ./prog_cl --quiet) > "$w/cl.log" 2>&1 ||
      { fail "$c on OpenCL:"; tail -n 15 "$w/cl.log"; continue; }
    grep -q "weights identical on all 3 ranks" "$w/cl.log" || { fail "$c: OpenCL ranks' weights differ"; cat "$w/cl.log"; }
    [ "$c" = batchnorm ] && continue
    "$compare" weights "$w/init.safetensors" "$w/out.safetensors" "$w/one.safetensors" > "$w/cmpcl.log" ||
      { fail "$c: OpenCL with 3 ranks differs from one process"; cat "$w/cmpcl.log"; }
  done
else
  echo "skipped the OpenCL part: no OpenCL device"
fi

echo "== same N, same seed, same bits"
w=$tmp/cnn_adam_strided
(cd "$w" && "${MPIRUN[@]}" -np 3 ./prog --quiet --seed 7 && mv out.safetensors a.safetensors &&
   "${MPIRUN[@]}" -np 3 ./prog --quiet --seed 7 && cmp a.safetensors out.safetensors) > "$w/det.log" 2>&1 ||
  { fail "two runs with 3 ranks differ"; cat "$w/det.log"; }

echo "== a failing rank stops every rank"
w=$tmp/cnn_sgd
mkdir -p "$tmp/empty"
# Rank 1 runs where x.npy is missing; rank 0 would wait for it forever without MPI_Abort.
timeout 60 "${MPIRUN[@]}" -np 1 --wdir "$w" "$w/prog" --quiet : -np 1 --wdir "$tmp/empty" "$w/prog" --quiet \
  > "$tmp/fail.log" 2>&1
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "a rank's failure: exit status $rc (124: hung)"
grep -q "rank 1 of 2" "$tmp/fail.log" || { fail "the message does not name rank 1"; cat "$tmp/fail.log"; }

# --- 4: accuracy with 1, 2, 4 ranks on a slice of Fashion-MNIST
data=$tmp/data/fashion-mnist
mkdir -p "$data"
src=${NNC_DATA:-/usr/share/datasets}/fashion-mnist
slice() {  # slice FILE ROWS BYTES_PER_ROW HEADER_BYTES: an IDX file of the first ROWS rows
  local f=$1 rows=$2 per=$3 hdr=$4 out=$data/$(basename "$1" .gz)
  { zcat -f "$f" | head -c 4; printf "%08x" "$rows" | xxd -r -p; zcat -f "$f" | head -c "$hdr" | tail -c +9
    zcat -f "$f" | tail -c +$((hdr + 1)) | head -c $((rows * per)); } > "$out"
}
if [ -f "$src/train-images-idx3-ubyte.gz" ] || [ -f "$src/train-images-idx3-ubyte" ]; then
  pick() { ls "$src/$1"* | head -n 1; }
  slice "$(pick train-images-idx3-ubyte)" 6000 784 16
  slice "$(pick train-labels-idx1-ubyte)" 6000 1 8
  slice "$(pick t10k-images-idx3-ubyte)" 2000 784 16
  slice "$(pick t10k-labels-idx1-ubyte)" 2000 1 8
  for model in mlp cnn; do
    echo "== $model accuracy"
    w=$tmp/acc_$model
    mkdir -p "$w"
    (cd "$w" && "$NNC" build "$root/tests/mpi/$model.nn" --mpi -o prog) > "$w/build.log" 2>&1 || { fail "build $model"; cat "$w/build.log"; continue; }
    ranks="1 2 4"
    acc1=
    for n in $ranks; do
      (cd "$w" && NNC_MPI_CHECK=1 timeout 300 "${MPIRUN[@]}" -np $n ./prog --threads 1 --data-dir "$tmp/data") > "$w/np$n.log" 2>&1 ||
        { fail "$model with $n ranks"; tail "$w/np$n.log"; continue; }
      acc=$(sed -n 's/^test accuracy: //p' "$w/np$n.log")
      echo "  $n ranks: test accuracy $acc"
      [ "$(grep -c '^test accuracy' "$w/np$n.log")" = 1 ] || fail "$model: output printed $(grep -c '^test accuracy' "$w/np$n.log") times with $n ranks"
      [ "$(grep -c '^Epoch 1/1' "$w/np$n.log")" = 1 ] || fail "$model: progress printed more than once with $n ranks"
      [ -n "$acc1" ] || acc1=$acc
      awk -v a="$acc" -v b="$acc1" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0.7 && d <= 0.015) }' ||
        fail "$model: accuracy $acc with $n ranks against $acc1 with 1 (must be > 0.7 and within 0.015)"
    done
  done
else
  echo "skipped the accuracy part: Fashion-MNIST not in $src (dataset-fashion-mnist)"
fi

[ $failed -eq 0 ] && echo "all passed" || echo "$failed failed"
[ $failed -eq 0 ]

#!/bin/bash
# compare_fashion.sh — nnc against PyTorch on the Fashion-MNIST CNN, same machine,
# same epochs, same thread count, one after the other.
#
#   benchmarks/compare_fashion.sh [--epochs N] [--threads N] [--nnc PATH] [--data-dir DIR]
#
# nnc side: `nnc build examples/fashion_cnn.nn -o /tmp/fashion_cnn`, run with
# --epochs/--threads/--json. PyTorch side: benchmarks/fashion_cnn_torch.py (the same
# model, init, optimizer and batch size) under Debian's /usr/bin/python3.
# Seconds per epoch include the per-epoch validation pass on both sides (Keras's fit
# with validation_data does it). For nnc they come from its --json epoch records when
# those carry a time, else from wall time / epochs (marked '*': includes start-up,
# data loading and the final evaluation, so it is pessimistic for nnc).
set -euo pipefail
cd "$(dirname "$0")/.."

epochs=1
threads=$(nproc)
nnc=${NNC:-}
data_dir=
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) epochs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --nnc) nnc=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    *) echo "usage: $0 [--epochs N] [--threads N] [--nnc PATH] [--data-dir DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$nnc" ]; then  # the first built compiler found
  for c in build/nnc build-*/nnc; do [ -x "$c" ] && { nnc=$c; break; }; done
fi
if [ -z "$nnc" ] || [ ! -x "$nnc" ]; then
  echo "error: no nnc binary; build one (cmake --build build) or pass --nnc PATH" >&2
  exit 1
fi
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data_args=()
[ -n "$data_dir" ] && data_args=(--data-dir "$data_dir")

now() { date +%s.%N; }

echo "== nnc ($nnc): building examples/fashion_cnn.nn"
"$nnc" build examples/fashion_cnn.nn -o /tmp/fashion_cnn
echo "== nnc: $epochs epoch(s), $threads thread(s)"
t0=$(now)
(cd "$work" && /tmp/fashion_cnn --epochs "$epochs" --threads "$threads" --json "${data_args[@]}") \
  | tee "$work/nnc.out"
nnc_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')

echo "== PyTorch: $epochs epoch(s), $threads thread(s)"
torch_data=()
[ -n "$data_dir" ] && torch_data=(--data-dir "$data_dir/fashion-mnist")
t0=$(now)
$python benchmarks/fashion_cnn_torch.py --epochs "$epochs" --threads "$threads" "${torch_data[@]}" \
  | tee "$work/torch.out"
torch_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')

# nnc: mean of the times in its per-epoch JSON records ({"epoch":N,...,"seconds":S}),
# not the evaluation records, if present; else wall / epochs.
nnc_sec=$(grep -E '"epoch"[[:space:]]*:' "$work/nnc.out" |
  grep -oE '"(epoch_seconds|seconds|time|elapsed|duration)"[[:space:]]*:[[:space:]]*[0-9.eE+-]+' |
  awk -F: '{ s += $2; n++ } END { if (n) printf "%.3f", s / n }')
nnc_mark=
if [ -z "$nnc_sec" ]; then
  nnc_sec=$(awk -v w="$nnc_wall" -v e="$epochs" 'BEGIN { printf "%.3f", w / e }')
  nnc_mark='*'
fi
# Test accuracy: the last plain "accuracy" value printed (the final evaluate).
nnc_acc=$(grep -oE '(^|[^_])"?accuracy"?[[:space:]]*[:=][[:space:]]*[0-9.]+' "$work/nnc.out" |
  tail -n 1 | grep -oE '[0-9.]+$' || true)
result=$(grep '^RESULT' "$work/torch.out")
field() { echo "$result" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
torch_sec=$(field sec_per_epoch)
torch_acc=$(field test_acc)
train_rows=60000

echo
printf '%-16s %10s %12s %10s %10s\n' "" "s/epoch" "samples/s" "test acc" "wall s"
awk -v s="$nnc_sec" -v m="$nnc_mark" -v a="${nnc_acc:-?}" -v w="$nnc_wall" -v n=$train_rows \
  'BEGIN { printf "%-16s %9.2f%1s %12.0f %10s %10.1f\n", "nnc", s, m, n / s, a, w }'
awk -v s="$torch_sec" -v a="$torch_acc" -v w="$torch_wall" -v n=$train_rows \
  'BEGIN { printf "%-16s %9.2f%1s %12.0f %10s %10.1f\n", "PyTorch", s, "", n / s, a, w }'
awk -v a="$nnc_sec" -v b="$torch_sec" \
  'BEGIN { printf "%-16s %9.2fx  (time per epoch; < 1 means nnc is faster)\n", "nnc / PyTorch", a / b }'
[ -n "$nnc_mark" ] && echo "* wall time / epochs: nnc printed no per-epoch time"
echo "($epochs epoch(s), $threads thread(s), $(nproc) cores, $(uname -m))"

#!/usr/bin/env bash
# Every example builds and trains end to end (shortened with --epochs where the data
# set is large), and reaches the quality it should. Run as: bash tests/test_examples_train.sh NNC
set -u
NNC=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
# A JSON field's value from the last line that has it.
field() { grep -o "\"$2\":[-0-9.e+]*" "$1" | tail -1 | cut -d: -f2; }
# awk comparison: at_least VALUE MIN
at_least() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 >= m + 0) }'; }
at_most() { awk -v v="$1" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 <= m + 0) }'; }

build() {  # build NAME: compile examples/NAME.nn into ./NAME
  if "$NNC" build "$ROOT/examples/$1.nn" -o "$1" 2>"$1.build.log"; then return 0; fi
  cat "$1.build.log"; bad "$1 builds"; return 1
}

# Linear regression: y = 2 x1 - 3 x2 + 1 learned by SGD to a tiny error.
if build linear_regression; then
  ./linear_regression --json >lr.out 2>&1
  loss=$(field lr.out loss)
  if at_most "$loss" 1e-3 && grep -q '^{"print":"(2, 1)"}$' lr.out && [ -f linear_regression_predictions.npy ]; then
    ok "linear_regression (final loss $loss)"
  else cat lr.out | tail -5; bad "linear_regression (loss '$loss')"; fi
fi

# One relu unit with Adam on MSE.
if build relu_unit; then
  ./relu_unit --json >ru.out 2>&1
  loss=$(field ru.out loss)
  if at_most "$loss" 0.01; then ok "relu_unit (loss $loss)"; else tail -5 ru.out; bad "relu_unit (loss '$loss')"; fi
fi

# gelu, swish, elu, selu, softplus, hard_sigmoid, leaky_relu and the LeakyReLU, ELU, ReLU,
# Softmax layers: learns its 12 points with the C target, and the OpenCL target (where a
# device is found, unless NNC_NO_OPENCL=1) ends at the same loss.
if build activations; then
  ./activations --json >act.out 2>&1
  loss=$(field act.out loss) acc=$(field act.out accuracy)
  if at_most "$loss" 0.05 && at_least "$acc" 1; then ok "activations (loss $loss)"
  else tail -5 act.out; bad "activations (loss '$loss', accuracy '$acc')"; fi
  if [ "${NNC_NO_OPENCL:-0}" != 1 ] && "$NNC" devices >/dev/null 2>&1; then
    if "$NNC" build "$ROOT/examples/activations.nn" --target opencl -o activations_cl 2>act_cl.build.log; then
      ./activations_cl --json >act_cl.out 2>&1
      cl=$(field act_cl.out loss)
      if awk -v a="$loss" -v b="$cl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b != "" && d <= 1e-3 + 0.05 * a) }'
      then ok "activations --target opencl (loss $cl)"; else tail -5 act_cl.out; bad "activations --target opencl (loss '$cl', C $loss)"; fi
    else cat act_cl.build.log; bad "activations builds for --target opencl"; fi
  fi
fi

# The 224x224 CNN compiles (it has no fit: summary only).
if build cnn_224; then
  if ./cnn_224 | grep -q 'Total params: 11,964,042'; then ok "cnn_224 summary"; else bad "cnn_224 summary"; fi
fi

# A tenth of Fashion-MNIST (6000 train, 1000 test) as IDX files, so CI trains each data
# set example in seconds: a built program accepts any number of rows, only the
# per-sample shape is compiled in. make_subset SRC_DIR DST_DIR
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
make_subset() {
  local src=$1 dst=$2
  mkdir -p "$dst"
  for part in train:6000 t10k:1000; do
    local name=${part%%:*} rows=${part##*:}
    { printf '\x00\x00\x08\x03'; printf "$(be32 "$rows")"; printf "$(be32 28)$(be32 28)"
      zcat "$src/$name-images-idx3-ubyte.gz" | tail -c +17 | head -c $((rows * 784)); } | gzip -1 >"$dst/$name-images-idx3-ubyte.gz"
    { printf '\x00\x00\x08\x01'; printf "$(be32 "$rows")"
      zcat "$src/$name-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$rows"; } | gzip -1 >"$dst/$name-labels-idx1-ubyte.gz"
  done
}

FASHION=/usr/share/datasets/fashion-mnist
if [ -e $FASHION/train-images-idx3-ubyte.gz ]; then
  make_subset $FASHION data/fashion-mnist
  make_subset $FASHION data/mnist   # Debian has no MNIST package: the same files stand in
  # MLP with dropout, one epoch.
  if build fashion_mlp_dropout; then
    ./fashion_mlp_dropout --epochs 1 --data-dir data --json >mlp.out 2>&1
    acc=$(field mlp.out accuracy)
    if at_least "$acc" 0.72; then ok "fashion_mlp_dropout 1 epoch (test accuracy $acc)"; else tail -5 mlp.out; bad "fashion_mlp_dropout (accuracy '$acc')"; fi
  fi
  # The CNN of the README, one epoch.
  if build fashion_cnn; then
    ./fashion_cnn --epochs 1 --data-dir data --json >cnn.out 2>&1
    acc=$(field cnn.out val_accuracy)
    if at_least "$acc" 0.70 && [ -s fashion_cnn.safetensors ]; then ok "fashion_cnn 1 epoch (val accuracy $acc)"
    else tail -5 cnn.out; bad "fashion_cnn (val accuracy '$acc')"; fi
  fi
  # The same three data-set examples on the OpenCL target (where a device is found,
  # unless NNC_NO_OPENCL=1): the accuracy the C target reached, within float rounding's
  # reach over an epoch (0.02).
  if [ "${NNC_NO_OPENCL:-0}" != 1 ] && "$NNC" devices >/dev/null 2>&1; then
    for ex in fashion_mlp_dropout:mlp.out:accuracy fashion_cnn:cnn.out:val_accuracy; do
      name=${ex%%:*} rest=${ex#*:}; cout=${rest%%:*} key=${rest#*:}
      if "$NNC" build "$ROOT/examples/$name.nn" --target opencl -o "${name}_cl" 2>"${name}_cl.build.log"; then
        "./${name}_cl" --epochs 1 --data-dir data --json >"${name}_cl.out" 2>&1
        c=$(field "$cout" "$key") cl=$(field "${name}_cl.out" "$key")
        if awk -v a="$c" -v b="$cl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 0.02) }'
        then ok "$name --target opencl ($key $cl, C $c)"; else tail -5 "${name}_cl.out"; bad "$name --target opencl ($key '$cl', C '$c')"; fi
      else cat "${name}_cl.build.log"; bad "$name builds for --target opencl"; fi
    done
  fi
  # The MNIST example on the stand-in set: categorical crossentropy, validation_split,
  # Dropout, print of shapes and scores.
  if build mnist_cnn; then
    ./mnist_cnn --epochs 1 --data-dir data >mnist.out 2>&1
    acc=$(grep '^Test accuracy:' mnist.out | awk '{print $3}')
    if grep -q '^x_train shape: (6000, 28, 28, 1)$' mnist.out && grep -q '^1000 test samples$' mnist.out && at_least "$acc" 0.60; then ok "mnist_cnn 1 epoch (test accuracy $acc)"
    else tail -5 mnist.out; bad "mnist_cnn (accuracy '$acc')"; fi
    # Without the data: exit 1 and a message naming where it looked.
    if NNC_DATA= ./mnist_cnn --data-dir "$WORK/none" >missing.out 2>&1; then bad "mnist_cnn without data should fail"
    elif grep -q "none/mnist" missing.out; then ok "mnist_cnn without data: $(head -1 missing.out | cut -c1-80)"
    else cat missing.out; bad "mnist_cnn missing-data message"; fi
    if [ "${NNC_NO_OPENCL:-0}" != 1 ] && "$NNC" devices >/dev/null 2>&1; then
      if "$NNC" build "$ROOT/examples/mnist_cnn.nn" --target opencl -o mnist_cnn_cl 2>mnist_cl.build.log; then
        ./mnist_cnn_cl --epochs 1 --data-dir data >mnist_cl.out 2>&1
        cl=$(grep '^Test accuracy:' mnist_cl.out | awk '{print $3}')
        if awk -v a="$acc" -v b="$cl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 0.02) }'
        then ok "mnist_cnn --target opencl (test accuracy $cl, C $acc)"; else tail -5 mnist_cl.out; bad "mnist_cnn --target opencl ('$cl', C '$acc')"; fi
      else cat mnist_cl.build.log; bad "mnist_cnn builds for --target opencl"; fi
    fi
  fi
else
  echo "skip: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

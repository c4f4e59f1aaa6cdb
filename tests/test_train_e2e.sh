#!/bin/bash
# End to end: `nnc build` a script, run the program, check what it learned and printed.
# Usage: test_train_e2e.sh path/to/nnc
set -u
NNC=$(realpath "$1")
T=$(mktemp -d /tmp/nnc-e2e-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
export OMP_NUM_THREADS=1   # tiny models: threads only add noise
fail() { echo "FAIL: $*"; exit 1; }

# An NPY v1 file of uint8 values: write_npy PATH SHAPE VALUES...
write_npy() {
  local path=$1 shape=$2; shift 2
  local h="{'descr': '|u1', 'fortran_order': False, 'shape': $shape, }"
  local pad=$(( (10 + ${#h} + 1 + 63) / 64 * 64 - 10 - ${#h} - 1 ))
  h="$h$(printf '%*s' $pad '')"
  local hl=$(( ${#h} + 1 ))
  {
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))"
    printf '%s\n' "$h"
    for v in "$@"; do printf "\\x$(printf %02x "$v")"; done
  } > "$path"
}

# 1. XOR: a hidden tanh layer must learn it exactly.
cat > xor.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = np.array([0, 1, 1, 0])
model = keras.Sequential([
    keras.layers.Dense(16, activation='tanh', input_shape=(2,)),
    keras.layers.Dense(2, activation='softmax'),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05),
              loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=200, batch_size=4, verbose=0)
loss, acc = model.evaluate(x, y, verbose=0)
print('accuracy:', acc)
print('done "quoted" \\ */')
NN
"$NNC" build xor.nn -o xor > build.log 2>&1 || { cat build.log; fail "nnc build xor.nn"; }
[ -x xor ] || fail "no executable"
ls xor.tmp 2>/dev/null && fail "temporary output left behind"
./xor --seed 3 > run1.txt 2>&1 || { cat run1.txt; fail "xor exited $?"; }
grep -qx 'accuracy: 1.0' run1.txt || { cat run1.txt; fail "XOR not learned"; }
grep -qxF 'done "quoted" \ */' run1.txt || { cat run1.txt; fail "string printed wrong"; }

# 2. Same seed, same run.
./xor --seed 3 > run2.txt 2>&1
cmp -s run1.txt run2.txt || fail "--seed 3 twice gave different output"

# 3. The emitted source is deterministic and readable.
"$NNC" emit xor.nn --target c -o out1 > /dev/null 2>&1 || fail "nnc emit"
"$NNC" emit xor.nn --target c -o out2 > /dev/null 2>&1 || fail "nnc emit (2)"
cmp -s out1/model.c out2/model.c || fail "emit is not deterministic"
grep -q 'static void dense_1_bwd_matmul_dw_bias(State \*s, int n)' out1/model.c || fail "node functions not named after the graph"
awk 'length > 160 { exit 1 }' out1/model.c || fail "giant lines in model.c"

# 4. A built program refuses data whose shape changed since it was compiled.
write_npy x.npy '(4, 2)' 0 0 0 1 1 0 1 1
write_npy y.npy '(4,)' 0 1 1 0
cat > npy.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.load('x.npy')
y = np.load('y.npy')
model = keras.Sequential([keras.layers.Dense(8, activation='relu', input_shape=(2,)),
                          keras.layers.Dense(1, activation='sigmoid')])
model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=2, verbose=0)
print('trained')
NN
"$NNC" build npy.nn -o npyprog > build2.log 2>&1 || { cat build2.log; fail "nnc build npy.nn"; }
./npyprog > ok.txt 2>&1 || { cat ok.txt; fail "npy program failed on its own data"; }
grep -qx trained ok.txt || fail "npy program did not train"
write_npy x.npy '(4, 3)' 0 0 0 0 1 0 1 0 0 1 1 0
./npyprog > bad.txt 2>&1 && fail "program accepted data of a different shape"
[ -s bad.txt ] || fail "no message for data of a different shape"

# 5. Linear regression with SGD reaches the exact line.
cat > lin.nn <<'NN'
import numpy as np
import tensorflow as tf
x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [1.0, 2.0]])
y = np.array([1.0, 3.0, -2.0, 0.0, 2.0, -3.0])
model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
model.compile(optimizer='sgd', loss='mse')
model.fit(x, y, epochs=2000, verbose=0)
score = model.evaluate(x, y, verbose=0)
print(score)   # without metrics, evaluate returns the loss alone, as in Keras
NN
"$NNC" build lin.nn -o lin > build3.log 2>&1 || { cat build3.log; fail "nnc build lin.nn"; }
loss=$(./lin --quiet | tail -1)
[[ "$loss" =~ ^[0-9.e+-]+$ ]] || fail "linear regression printed '$loss', not a loss"
awk -v l="$loss" 'BEGIN { exit !(l + 0 < 1e-4) }' || fail "linear regression loss $loss"
echo "ok"

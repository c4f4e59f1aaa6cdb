#!/bin/bash
# test_keras_files.sh — Keras's own weights files, read and written by built programs.
#   bash tests/test_keras_files.sh path/to/nnc
# tests/keras/ holds files real Keras 3 wrote (tests/keras/make_fixtures.py): small.nn
# loads each (.weights.h5, .keras, Keras 2's whole-model .h5) and must evaluate to what
# Keras printed; then writes nnc's own files in every format, checks their layout with
# h5ls / unzip, and loads them back to the same result. Damaged, truncated, foreign and
# mismatched files must be refused by the program with a message and exit status 1.
nnc=${1:?usage: test_keras_files.sh path/to/nnc}
nnc=$(cd "$(dirname "$nnc")" && pwd)/$(basename "$nnc")
src=$(cd "$(dirname "$0")" && pwd)/keras
if ! "$nnc" check "$src/small.nn" >/dev/null 2>&1 && "$nnc" check "$src/small.nn" 2>&1 | grep -q "without HDF5"; then
  echo "SKIP: nnc was built without HDF5"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$src"/* "$tmp"/
cd "$tmp" || exit 1
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

"$nnc" build small.nn -o small 2>build.err || { cat build.err; bad "build small.nn"; exit 1; }
ldd ./small | grep -q hdf5 && ok "a program that uses HDF5 files links libhdf5" || bad "small does not link libhdf5"
./small >out.txt 2>err.txt; rc=$?
[ $rc -eq 0 ] && ok "small runs" || { cat err.txt; bad "small exit $rc"; }
read -r want_loss want_acc <small_expected.txt
for name in keras.weights.h5 keras.keras keras_legacy.h5 nnc.weights.h5 nnc.h5 nnc.keras nnc_model.h5; do
  line=$(grep "^$name " out.txt)
  if awk -v l="$line" -v wl="$want_loss" -v wa="$want_acc" 'BEGIN { split(l, f, " ");
        d = f[2] - wl; if (d < 0) d = -d; exit !(NF == 0 && f[3] == wa && d <= 1e-6 * wl) }'; then
    ok "$name evaluates as in Keras (loss ${line#* })"
  else bad "$name: got '${line:-nothing}', Keras: loss $want_loss accuracy $want_acc"; fi
done

# small.nn loaded Keras's optimizer state (small.weights.h5 and small.keras hold Adam's
# iterations, learning rate, momentums and velocities) and wrote it back into its own file.
h5diff small.weights.h5 nnc.weights.h5 /optimizer /optimizer >/dev/null &&
  ! h5diff small.weights.h5 wider.weights.h5 /optimizer/vars/0 /optimizer/vars/0 >/dev/null 2>&1 &&
  ok "Keras's optimizer state goes through nnc bit for bit" || bad "optimizer state differs after nnc"

# The OpenCL target reads the weights back from the device and sends loaded ones to it.
if "$nnc" devices >/dev/null 2>&1 && "$nnc" build small.nn --target opencl -o small_cl 2>/dev/null; then
  if ./small_cl >out_cl.txt 2>err.txt && diff <(cut -d' ' -f1,3 out.txt) <(cut -d' ' -f1,3 out_cl.txt) >/dev/null &&
     awk 'NR == FNR { want[$1] = $2; next } { d = $2 - want[$1]; if (d < 0) d = -d; if (d > 1e-5) exit 1 }' out.txt out_cl.txt; then
    ok "OpenCL target: every file loads and saves to the same results"
  else bad "OpenCL target: $(head -c 300 err.txt)"; fi
fi

# Layouts, as Keras reads them.
h5ls -r nnc.weights.h5 >ls.txt 2>&1
for want in '^/layers/dense/vars/0 +Dataset \{4, 5\}' '^/layers/dense/vars/1 +Dataset \{5\}' \
            '^/layers/batch_normalization/vars/3 +Dataset \{5\}' '^/layers/dense_1/vars/0 +Dataset \{5, 3\}' \
            '^/vars +Group'; do
  grep -Eq "$want" ls.txt && ok "nnc.weights.h5 has ${want//[\\^+]/}" || bad "nnc.weights.h5 lacks $want"
done
h5dump -a /layers/dense_1/vars/name nnc.weights.h5 | grep -q '"dense_1"' && ok "vars groups name their layer" \
  || bad "no name attribute on /layers/dense_1/vars"
h5ls -r nnc.h5 | grep -Eq '^/dense/dense/kernel:0 +Dataset \{4, 5\}' && ok "nnc.h5 is Keras 2's layout" || bad "nnc.h5 layout"
h5dump -a layer_names nnc.h5 | grep -q '"batch_normalization"' && ok "nnc.h5 lists layer_names" || bad "nnc.h5 layer_names"
h5dump -a model_config nnc_model.h5 | grep -q 'Sequential' && h5ls -r nnc_model.h5 | grep -q '^/model_weights/dense_1/dense_1/bias:0' \
  && ok "nnc_model.h5 holds model_config and model_weights" || bad "nnc_model.h5 layout"
if unzip -l nnc.keras >zip.txt 2>&1 && grep -q config.json zip.txt && grep -q metadata.json zip.txt &&
   grep -q model.weights.h5 zip.txt && unzip -tq nnc.keras >/dev/null; then
  unzip -p nnc.keras config.json | grep -q '"class_name": "Dense", "config": {"name": "dense_1"' \
    && ok "nnc.keras is a zip of config.json, metadata.json, model.weights.h5 (CRCs check)" || bad "nnc.keras config.json"
else bad "nnc.keras is not the zip Keras reads"; fi
ls ./*.tmp.* >/dev/null 2>&1 && bad "temporary files left behind" || ok "no temporary files left"

# Refusals: one program per reader, fed one file after another.
cat >load.nn <<'NN'
import numpy as np
from tensorflow import keras
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation='relu'),
                          keras.layers.BatchNormalization(), keras.layers.Dense(3, activation='softmax')])
model.load_weights('in.weights.h5')
model.load_weights('in.keras')
NN
"$nnc" build load.nn -o load 2>build.err || { cat build.err; bad "build load.nn"; }
refuse() {  # refuse NAME FILE.weights.h5 FILE.keras EXPECTED-MESSAGE
  cp "$2" in.weights.h5; cp "$3" in.keras
  timeout 20 ./load >/dev/null 2>err.txt; rc=$?
  if [ $rc -eq 1 ] && grep -q "^error: .*$4" err.txt && [ "$(wc -l <err.txt)" -eq 1 ]; then ok "$1: $(cat err.txt)"
  else bad "$1: exit $rc, want 1 and '$4'; got: $(head -c 300 err.txt)"; fi
}
head -c 9000 small.keras >trunc.keras
printf 'hello, not weights\n' >text.weights.h5
refuse "wider layer" wider.weights.h5 small.keras "weight 'dense.kernel' has shape \[4, 6\] in the file"
refuse "foreign HDF5" foreign.h5 small.keras "not Keras weights"
refuse "text file" text.weights.h5 small.keras "not an HDF5 file"
refuse "truncated .keras" small.weights.h5 trunc.keras "not a .keras archive"
refuse "HDF5 as .keras" small.weights.h5 small.weights.h5 "not a .keras archive"
{ printf 'PK\005\006'; head -c 18 /dev/zero; } >empty.keras
refuse "empty zip as .keras" small.weights.h5 empty.keras "has no model.weights.h5"
cp nnc.keras bitflip.keras
printf '\377' | dd of=bitflip.keras bs=1 seek=5000 conv=notrunc status=none
refuse "damaged .keras entry" small.weights.h5 bitflip.keras "CRC-32"
for n in 100 1000 2100 4000 8000 12000 16000 20000 24000; do
  head -c $n small.weights.h5 >cut.weights.h5
  refuse "HDF5 cut at $n bytes" cut.weights.h5 small.keras "in.weights.h5: "
done
cp small_legacy.h5 in.weights.h5; cp small.keras in.keras
./load 2>err.txt && ok "the right files load" || bad "load of the right files: $(cat err.txt)"

# ModelCheckpoint: the format follows the name and save_weights_only, as in Keras 3.
cat >ckpt.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, -0.1, 0.2, 0.0]])
y = np.array([0, 1])
model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(5, activation='relu'),
                          keras.layers.BatchNormalization(), keras.layers.Dense(3, activation='softmax')])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
model.fit(x, y, epochs=2, verbose=0, callbacks=[
    keras.callbacks.ModelCheckpoint('ck{epoch:02d}.keras', monitor='loss'),
    keras.callbacks.ModelCheckpoint('ck.h5', monitor='loss'),
    keras.callbacks.ModelCheckpoint('ck.weights.h5', monitor='loss', save_weights_only=True),
    keras.callbacks.ModelCheckpoint('ckw.h5', monitor='loss', save_weights_only=True)])
NN
if "$nnc" build ckpt.nn -o ckpt 2>build.err && ./ckpt; then
  unzip -tq ck02.keras >/dev/null && [ -f ck01.keras ] && h5dump -a model_config ck.h5 >/dev/null &&
    h5ls ck.weights.h5/layers/dense_1/vars >/dev/null && h5dump -a layer_names ckw.h5 >/dev/null &&
    ok "ModelCheckpoint writes .keras, whole-model .h5, .weights.h5 and Keras 2 weights" || bad "ModelCheckpoint files"
else cat build.err; bad "ckpt.nn"; fi

# A script that touches no HDF5 file does not link libhdf5.
sed -e "s/'in.weights.h5'/'in.safetensors'/" -e '/in.keras/d' load.nn >plain.nn
"$nnc" build plain.nn -o plain 2>/dev/null && ! ldd ./plain | grep -q hdf5 && ok "safetensors-only programs do not link libhdf5" \
  || bad "plain.nn links libhdf5"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

#!/bin/bash
# A valgrind memcheck of a short training run: every runtime path a script commonly
# takes (CSV data, Dropout, Adam, validation_split, EarlyStopping, ModelCheckpoint,
# CSVLogger, BackupAndRestore with a resume, TerminateOnNaN, --check-numerics, evaluate,
# predict, np.save, save/load weights). Invalid reads or writes, uses of uninitialised
# values and definite leaks fail it. Skipped, saying so, where valgrind is not installed.
#
# Usage: test_valgrind.sh path/to/nnc
set -u
NNC=$(realpath "$1")
if ! command -v valgrind > /dev/null; then
  echo "SKIP: valgrind is not installed"
  exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/nnc-valgrind-XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }

awk 'BEGIN { srand(5); for (i = 0; i < 200; i++) { line = "";
  for (j = 0; j < 16; j++) line = line (j ? "," : "") sprintf("%.4f", rand()); print line > "x.csv"; print i % 3 > "y.csv" } }'
cat > vg.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.loadtxt('x.csv', delimiter=',')
y = np.loadtxt('y.csv', delimiter=',')
model = keras.Sequential([
    keras.layers.Dense(32, activation='relu', input_shape=(16,)),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(3, activation='softmax'),
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=2,
          callbacks=[keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True),
                     keras.callbacks.ModelCheckpoint('ckpt.safetensors'),
                     keras.callbacks.CSVLogger('log.csv'),
                     keras.callbacks.BackupAndRestore('bk', save_freq=5),
                     keras.callbacks.TerminateOnNaN()])
loss, acc = model.evaluate(x, y, verbose=0)
p = model.predict(x, verbose=0)
np.save('p.npy', p)
model.save_weights('w.safetensors')
model.load_weights('w.safetensors')
print('done')
NN
"$NNC" build vg.nn -o vg > /dev/null 2> build.err || fail "build: $(cat build.err)"
vg() {
  valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --track-origins=yes "$@"
}
vg ./vg --check-numerics > run.out 2> run.err
rc=$?
[ $rc = 0 ] || fail "memcheck of a training run (exit $rc): $(head -40 run.err)"
grep -q done run.out || fail "the run did not finish: $(cat run.out)"
# The resume path: a backup left by an interrupted run, read back under memcheck.
./vg > /dev/null 2>&1 &
pid=$!
sleep 0.05
kill -INT $pid 2>/dev/null
wait $pid
vg ./vg > resume.out 2> resume.err
rc=$?
[ $rc = 0 ] || fail "memcheck of a resumed run (exit $rc): $(head -40 resume.err)"
echo "ok"

#!/bin/bash
# Full disks, unwritable directories and models that cannot fit.
#
# Usage: test_disk_full.sh path/to/nnc
# A 64 KiB tmpfs (mounted here when running as root; skipped otherwise, with a message)
# fills up during ModelCheckpoint, BackupAndRestore, CSVLogger and np.save: each must
# say so, keep the previous file whole, leave no temporary, and a backup must still
# resume. Models too large for memory are refused at build time in readable units.
set -u
NNC=$(realpath "$1")
T=$(mktemp -d "${TMPDIR:-/tmp}/nnc-full-XXXXXX")
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$T/small"; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }

awk 'BEGIN { srand(3); for (i = 0; i < 256; i++) { line = "";
  for (j = 0; j < 32; j++) line = line (j ? "," : "") sprintf("%.4f", rand()); print line > "x.csv"; print i % 3 > "y.csv" } }'

# 1. Models that cannot fit: refused at build time, sizes readable, no wrapped count.
cat > huge.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.loadtxt('x.csv', delimiter=',')
y = np.loadtxt('y.csv', delimiter=',')
model = keras.Sequential([keras.layers.Dense(2000000000, input_shape=(32,)), keras.layers.Dense(3, activation='softmax')])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
model.fit(x, y, epochs=1)
NN
NNC_MEMORY_LIMIT=1e12 "$NNC" build huge.nn -o huge 2> huge.err && fail "Dense(2000000000) was built"
grep -q "error: the model does not fit in memory: it needs 1.5 TiB at batch 32: weights 268.2 GiB, optimizer state 536.4 GiB, activations and gradients 745.1 GiB; this machine has 931.3 GiB" huge.err ||
  fail "huge model message: $(cat huge.err)"
sed -i 's/Dense(3,/Dense(2000000000,/' huge.nn
"$NNC" build huge.nn -o huge 2> huge.err && fail "two Dense(2000000000) were built"
grep -q "it needs 55.5 EiB at batch 32: weights 13.9 EiB, .*; that is more than a program can address" huge.err ||
  fail "overflowing model message: $(cat huge.err)"
[ -e huge ] && fail "a refused model left a program"

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the full-disk checks mount a tmpfs and need root (CI runs as root)"
  exit 0
fi
mkdir small
mount -t tmpfs -o size=64k tmpfs small 2> mount.err || { echo "SKIP: cannot mount a tmpfs: $(cat mount.err)"; exit 0; }
mounted=1

# 10,803 weights: one 43 KiB file fits in 64 KiB, a second beside it does not.
model() {  # model CALLBACKS [AFTER [UNITS]]
  cat <<NN
import numpy as np
from tensorflow import keras
x = np.loadtxt('x.csv', delimiter=',')
y = np.loadtxt('y.csv', delimiter=',')
model = keras.Sequential([keras.layers.Dense(${3:-300}, activation='relu', input_shape=(32,)), keras.layers.Dense(3, activation='softmax')])
model.compile(optimizer='sgd', loss='sparse_categorical_crossentropy')
model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[$1])
${2:-}
NN
}

# 2. ModelCheckpoint: the second epoch's file does not fit beside the first.
model "keras.callbacks.ModelCheckpoint('small/w.safetensors')" > ckpt.nn
"$NNC" build ckpt.nn -o ckpt > /dev/null 2>&1 || fail "build ckpt.nn"
./ckpt > ckpt.out 2> ckpt.err && fail "ModelCheckpoint on a full disk: no error"
grep -q "error: cannot write small/w.safetensors: No space left on device (the previous file, if any, is unchanged)" ckpt.err ||
  fail "ModelCheckpoint message: $(cat ckpt.err)"
[ "$(stat -c %s small/w.safetensors)" -gt 43000 ] || fail "the first checkpoint is gone or cut"
[ -z "$(ls small | grep tmp)" ] || fail "temporary left: $(ls small)"
cp small/w.safetensors first.safetensors
model "" "model.load_weights('first.safetensors')
print('loaded')" > load.nn
"$NNC" build load.nn -o load > /dev/null 2>&1 || fail "build load.nn"
./load | grep -q loaded || fail "the kept checkpoint does not load"
rm -f small/*

# 3. CSVLogger: a disk filled to its last bytes; rows written stay whole.
model "keras.callbacks.CSVLogger('small/log.csv')" > csv.nn
"$NNC" build csv.nn -o csv > /dev/null 2>&1 || fail "build csv.nn"
head -c 70000 /dev/zero > small/fill 2>/dev/null
while head -c 64 /dev/zero >> small/fill 2>/dev/null; do :; done   # every byte taken
./csv > /dev/null 2> csv.err && { rm -f small/fill; echo "note: CSVLogger fitted in the space left"; }
if [ -s csv.err ]; then
  grep -q "error: CSVLogger: cannot write small/log.csv: No space left on device (the rows before are kept)" csv.err ||
    fail "CSVLogger message: $(cat csv.err)"
  [ ! -s small/log.csv ] || [ "$(tail -c 2 small/log.csv | od -An -c | tr -d ' ')" = '\r\n' ] ||
    fail "CSVLogger left a partial row: $(od -c small/log.csv | tail -3)"
fi
rm -f small/*

# 4. np.save of predictions on a full disk: a message, the previous file unchanged.
model "" "p = model.predict(x, verbose=0)
np.save('small/p.npy', p)
np.save('small/q.npy', p)" > npsave.nn
"$NNC" build npsave.nn -o npsave > /dev/null 2>&1 || fail "build npsave.nn"
fill_but() {  # fill_but BYTES: take every byte of small, then give BYTES back
  head -c 70000 /dev/zero > small/fill 2>/dev/null
  while head -c 64 /dev/zero >> small/fill 2>/dev/null; do :; done
  truncate -s -"$1" small/fill
}
fill_but 4096   # one page: p.npy fits, q.npy does not
./npsave > /dev/null 2> np.err && fail "np.save on a full disk: no error"
grep -q "error: cannot write small/q.npy: No space left on device" np.err || fail "np.save message: $(cat np.err)"
[ "$(stat -c %s small/p.npy)" = $((128 + 256 * 3 * 4)) ] || fail "the first np.save file is not whole"
[ -z "$(ls small | grep tmp)" ] || fail "temporary left: $(ls small)"
rm -f small/*

# 5. BackupAndRestore: the second generation does not fit; the first stays, and resumes.
# 4,323 weights and as many slot values: 35 KiB a backup.
model "keras.callbacks.BackupAndRestore('small/bk')" "model.save_weights('final.safetensors')" 120 > bk.nn
"$NNC" build bk.nn -o bk > /dev/null 2>&1 || fail "build bk.nn"
./bk > /dev/null 2> bk.err && fail "BackupAndRestore on a full disk: no error"
grep -q "error: cannot write small/bk/backup-0.nnc: No space left on device" bk.err || fail "backup message: $(cat bk.err)"
[ -e small/bk/backup-1.nnc ] || fail "the first backup is gone"
cp -r small/bk bk-copy
umount small && mounted=""
mkdir -p small && cp -r bk-copy small/bk
./bk > /dev/null 2> bk2.err || fail "resume after the disk freed up: $(cat bk2.err)"
model "" "model.save_weights('final.safetensors')" 120 > plain.nn
"$NNC" build plain.nn -o plain > /dev/null 2>&1 && mv final.safetensors resumed.safetensors && ./plain > /dev/null ||
  fail "plain run"
cmp -s final.safetensors resumed.safetensors || fail "the run resumed after a full disk differs from an uninterrupted one"

# 6. Unwritable places: a directory that is a file.
touch notadir
model "keras.callbacks.ModelCheckpoint('notadir/w.safetensors')" > nd.nn
"$NNC" build nd.nn -o nd > /dev/null 2>&1 || fail "build nd.nn"
./nd > /dev/null 2> nd.err && fail "checkpoint under a file: no error"
grep -q "error: cannot .*notadir/w.safetensors.*Not a directory" nd.err || fail "not-a-directory message: $(cat nd.err)"
echo "ok"

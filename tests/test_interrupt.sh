#!/bin/bash
# Interruption and exact resumption: SIGKILL at random moments, SIGINT, SIGTERM, a second
# Ctrl-C, --resume DIR, a backup that does not match, TerminateOnNaN and --check-numerics.
#
# Usage: test_interrupt.sh path/to/nnc [TRIALS]
# Each trial SIGKILLs a training run (BackupAndRestore, a backup every 8 batches, dropout,
# Adam) up to 3 times at random moments, checks after each kill that no temporary file
# is left and that the backup is whole, then lets it finish and compares the final
# weights byte for byte with an uninterrupted run. CI runs 3 trials; a campaign passes
# more (e.g. 200) or sets NNC_KILL_TRIALS.
set -u
NNC=$(realpath "$1")
TRIALS=${2:-${NNC_KILL_TRIALS:-3}}
# On tmpfs where there is one: fsync is then free, and the test is about signals, not disks.
base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
T=$(mktemp -d "$base/nnc-interrupt-XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }
temps() { find . -name '*.tmp.*' | head -5; }

# 1024 samples of 32 features, 3 classes: a fixed pseudo-random set.
awk 'BEGIN { srand(7); for (i = 0; i < 1024; i++) { s = 0; line = "";
  for (j = 0; j < 32; j++) { v = rand(); s += v * (j % 3 - 1); line = line (j ? "," : "") sprintf("%.4f", v) }
  print line > "x.csv"; print (s > 0 ? (s > 1 ? 2 : 1) : 0) > "y.csv" } }'

model() {  # model CALLBACKS
  cat <<NN
import numpy as np
from tensorflow import keras
x = np.loadtxt('x.csv', delimiter=',')
y = np.loadtxt('y.csv', delimiter=',')
model = keras.Sequential([
    keras.layers.Dense(64, activation='relu', input_shape=(32,)),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(3, activation='softmax'),
])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=12, batch_size=16, verbose=2, callbacks=[$1])
model.save_weights('final.safetensors')
NN
}
model "keras.callbacks.BackupAndRestore(backup_dir='bk', save_freq=8)" > kill.nn
model "" > plain.nn
"$NNC" build kill.nn -o kill > /dev/null 2>&1 || fail "build kill.nn"
"$NNC" build plain.nn -o plain > /dev/null 2>&1 || fail "build plain.nn"

# The uninterrupted runs: with backups and without, the same bits.
start=$(date +%s%N)
./kill > ref.out || fail "reference run"
ms=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
mv final.safetensors ref.safetensors
[ -e bk ] && fail "a completed fit leaves its backup (delete_checkpoint=True)"
./plain > /dev/null || fail "plain run"
cmp -s final.safetensors ref.safetensors || fail "backups changed the training"
rm final.safetensors

# 1. SIGKILL at random moments.
kills=0 with_backup=0 compared=0 size="" window=0
for trial in $(seq "$TRIALS"); do
  rm -rf bk final.safetensors
  for k in 1 2 3; do
    ./kill > /dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v ms="$ms" -v r="$RANDOM" 'BEGIN { printf "%.4f", ms * (r / 32768.0) / 1000 }')"
    kill -KILL $pid > /dev/null 2>&1 && kills=$((kills + 1))
    wait $pid 2>/dev/null
    # Backups never have a temporary name. save_weights's file has one for the moment
    # between naming and renaming; a SIGKILL there leaves it, whole, to the next write.
    left=$(temps)
    if [ -n "$left" ]; then
      echo "$left" | grep -qv '^./final.safetensors.tmp.[0-9]*.[0-9]*$' && fail "trial $trial, kill $k: temporary files left: $left"
      window=$((window + 1))
    fi
    files=$(ls bk/backup-*.nnc 2>/dev/null)
    [ -n "$files" ] && with_backup=$((with_backup + 1))
    for f in $files; do   # both generations whole: written unnamed, linked when complete
      s=$(stat -c %s "$f")
      [ -z "$size" ] && size=$s
      [ "$s" = "$size" ] || fail "trial $trial: $f has $s bytes, other backups $size"
    done
  done
  rm -f final.safetensors
  ./kill > resumed.out 2> resumed.err || fail "trial $trial: resumed run failed: $(cat resumed.err)"
  cmp -s final.safetensors ref.safetensors || fail "trial $trial: resumed weights differ from the uninterrupted run's"
  [ -z "$(temps)" ] || fail "trial $trial: temporary files left after the run completed: $(temps)"
  compared=$((compared + 1))
  [ -e bk ] && fail "trial $trial: backup left after a completed fit"
done
echo "SIGKILL: $kills kills ($with_backup with a backup on disk, $window between naming and renaming the weights file), $compared resumed runs equal to the uninterrupted run"

# 2. SIGINT and SIGTERM: finish the step, save, say where, exit 130 / 143.
for sig in INT TERM; do
  rm -rf bk final.safetensors
  ./kill > sig.out 2> sig.err &
  pid=$!
  sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 2000 }')"
  kill -$sig $pid
  wait $pid
  rc=$?
  want=$([ $sig = INT ] && echo 130 || echo 143)
  if [ $rc = 0 ]; then echo "note: SIG$sig came after the run ended ($ms ms)"; continue; fi
  [ $rc = $want ] || fail "SIG$sig: exit $rc, expected $want ($(cat sig.err))"
  grep -q "interrupted at epoch [0-9]*, step [0-9]*; training state saved in bk/backup-[01].nnc\|interrupted after epoch [0-9]*; training state saved in bk/backup-[01].nnc" sig.err ||
    fail "SIG$sig: message: $(cat sig.err)"
  [ -z "$(temps)" ] || fail "SIG$sig: temporary files left"
  ./kill > /dev/null 2>&1 || fail "SIG$sig: resume failed"
  cmp -s final.safetensors ref.safetensors || fail "SIG$sig: resumed weights differ"
done

# 3. A second Ctrl-C stops at once, leaving no temporary file.
for i in 1 2 3; do
  rm -rf bk
  ./kill > /dev/null 2> twice.err &
  pid=$!
  sleep 0.0$((RANDOM % 9 + 1))
  kill -INT $pid 2>/dev/null
  kill -INT $pid 2>/dev/null
  wait $pid
  rc=$?
  [ $rc = 130 ] || [ $rc = 0 ] || fail "second Ctrl-C: exit $rc: $(cat twice.err)"
  [ -z "$(temps)" ] || fail "second Ctrl-C: temporary files left: $(temps)"
done

# 4. --resume DIR without the callback: the same bits.
rm -rf rdir final.safetensors
./plain --resume rdir > /dev/null 2> resume0.err &
pid=$!
sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 3000 }')"
kill -INT $pid
wait $pid
rc=$?
[ $rc = 130 ] || [ $rc = 0 ] || fail "--resume: exit $rc"
if [ $rc = 130 ]; then
  # No backup only when the signal came before training began (loading the data).
  [ -e rdir/backup-1.nnc -o -e rdir/backup-0.nnc ] || grep -q "^interrupted$" resume0.err ||
    fail "--resume: no backup in rdir: $(cat resume0.err)"
  ./plain --resume rdir > /dev/null 2> resume.err || fail "--resume: resumed run failed"
  grep -q "resuming from rdir/backup-[01].nnc: epoch" resume.err || fail "--resume: no resuming line: $(cat resume.err)"
fi
cmp -s final.safetensors ref.safetensors || fail "--resume: weights differ"
[ -e rdir ] && fail "--resume: backup left after completion"

# 5. A backup that does not fit this fit is refused by name, and left alone.
rm -rf rdir
./plain --resume rdir --epochs 1 > /dev/null &&
  ./plain --resume rdir --epochs 1 > /dev/null || fail "--resume: a 1-epoch run"
mkdir -p bad && printf 'garbage' > bad/backup-0.nnc
./plain --resume bad > /dev/null 2> bad.err && fail "a damaged backup was accepted"
grep -q "bad/backup-0.nnc: not an nnc backup; remove it" bad.err || fail "damaged backup message: $(cat bad.err)"
rm -rf bk && ./kill --epochs 12 > /dev/null 2>&1 & pid=$!
sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 2000 }')"; kill -INT $pid 2>/dev/null; wait $pid
if ls bk/backup-*.nnc > /dev/null 2>&1; then
  ./kill --batch-size 8 > /dev/null 2> bs.err && fail "a backup of another batch size was accepted"
  grep -q "another batch size" bs.err || fail "batch size mismatch message: $(cat bs.err)"
  ls bk/backup-*.nnc > /dev/null 2>&1 || fail "the mismatched backup was removed"
fi

# 6. Two fits share a backup_dir: killed in the second, the first is run again from the
# start (leaving the second's backup alone) and the second resumes: the same bits.
sed -e "s/epochs=12/epochs=5/" -e "s/^model.save_weights/model.fit(x, y, epochs=8, batch_size=16, verbose=2, callbacks=[keras.callbacks.BackupAndRestore(backup_dir='bk', save_freq=8)])\nmodel.save_weights/" kill.nn > two.nn
"$NNC" build two.nn -o two > /dev/null 2>&1 || fail "build two.nn"
rm -rf bk final.safetensors
./two > /dev/null || fail "two fits: reference run"
mv final.safetensors two.safetensors
cmp -s two.safetensors ref.safetensors && fail "two fits: the test's two runs are the same run"
for t in 1 2 3; do
  rm -rf bk final.safetensors
  ./two > /dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$ms" -v t=$t 'BEGIN { printf "%.3f", ms * (0.4 + 0.2 * t) / 1000 }')"
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  ./two > /dev/null 2> two.err || fail "two fits: resume: $(cat two.err)"
  cmp -s final.safetensors two.safetensors || fail "two fits: resumed weights differ (kill $t)"
done

# 7. TerminateOnNaN ends training (the script goes on); --check-numerics names the node.
sed 's/^0.4869,/nan,/' x.csv > xnan.csv
# tanh, not relu: relu(NaN) is 0 and would hide the NaN from the loss.
sed -e "s/'x.csv'/'xnan.csv'/" -e "s/'relu'/'tanh'/" plain.nn > nan.nn
sed -i 's/verbose=2, callbacks=\[\]/verbose=0, shuffle=False, callbacks=[keras.callbacks.TerminateOnNaN()]/' nan.nn
echo "print('after fit')" >> nan.nn
"$NNC" build nan.nn -o nan > /dev/null 2>&1 || fail "build nan.nn"
grep -q '^nan,' xnan.csv || fail "test data: no NaN written"
./nan > nan.out 2> nan.err || fail "TerminateOnNaN: exit $?: $(cat nan.err)"
grep -q "Batch 0: Invalid loss, terminating training (epoch 1, step 1, first produced by node batch_x (op input))" nan.out ||
  fail "TerminateOnNaN: $(cat nan.out)"
grep -q "after fit" nan.out || fail "TerminateOnNaN: the script did not go on"
./nan --check-numerics > /dev/null 2> cn.err && fail "--check-numerics: no error"
grep -q "error: --check-numerics: NaN or Inf first produced by node batch_x (op input) at epoch 1, step 1" cn.err ||
  fail "--check-numerics: $(cat cn.err)"
./plain --check-numerics --epochs 1 > /dev/null || fail "--check-numerics on a finite run"
# An overflow inside the model is blamed on a node of the model, not on its input.
cat > big.nn <<'NN'
import numpy as np
from tensorflow import keras
x = np.loadtxt('x.csv', delimiter=',')
y = np.loadtxt('y.csv', delimiter=',')
model = keras.Sequential([keras.layers.Dense(64, activation='relu', input_shape=(32,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=10.0), loss='mse')
model.fit(x, y, epochs=5, batch_size=16, verbose=0)
NN
"$NNC" build big.nn -o big > /dev/null 2>&1 || fail "build big.nn"
./big --check-numerics > /dev/null 2> big.err && fail "--check-numerics: lr=1e6 stayed finite"
grep -q "error: --check-numerics: NaN or Inf first produced by node [a-z0-9_]* (op [a-z0-9_]*) at epoch 1, step [0-9]*" big.err ||
  fail "--check-numerics overflow: $(cat big.err)"
grep -q "node batch_" big.err && fail "--check-numerics blamed the input: $(cat big.err)"
echo "ok"

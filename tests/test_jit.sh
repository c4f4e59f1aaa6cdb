#!/bin/bash
# test_jit.sh — `nnc run` (in-process compiler and linker) and the compiled-code cache.
#
#   bash tests/test_jit.sh path/to/nnc
#
# 1. nnc run gives the same bits as nnc build: every golden model (tests/golden), and a
#    randomly initialized one with a seed (weights, predictions, printed results).
# 2. nnc run starts no process: traced with strace -f on a cold cache (skipped, and
#    said, where strace cannot trace).
# 3. The cache: miss then hit; a truncated, garbled or foreign entry is rebuilt; four
#    concurrent cold runs leave one whole entry; LRU eviction under NNC_CACHE_MAX;
#    directory mode 0700; nnc build hits it too; nnc cache --stats/--clear.
# 4. The fallback (system compiler + dlopen, forced with NNC_NO_JIT=1) gives the same bits.
set -u
NNC=$(realpath "$1")
golden=$(cd "$(dirname "$0")/golden" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NNC_CACHE_DIR=$tmp/cache
export OMP_WAIT_POLICY=passive  # no re-execution of nnc for the passive wait policy
failed=0
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}

# A tiny model with random initialization; $1 hidden units (distinct models, entries).
tiny() {
  cat <<EOT
import numpy as np
x = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8], [0.2, 0.9]])
y = np.array([0, 1, 1, 0, 1])
model = Sequential([Dense($1, activation='relu', input_shape=(2,)), Dropout(0.25), Dense(2, activation='softmax')])
model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
model.fit(x, y, epochs=3, batch_size=2)
print(model.evaluate(x, y))
model.save_weights('w.safetensors')
EOT
}
mkdir -p "$tmp/t"
cd "$tmp/t" || exit 1
for h in 4 5 6 7; do tiny $h > m$h.nn; done

# --- 1. the same bits as nnc build -----------------------------------------------
for d in "$golden"/*/; do
  c=$(basename "$d")
  [ -f "$d/model.nn" ] || continue
  rm -rf "$tmp/g" && cp -r "$d" "$tmp/g"
  if ! (cd "$tmp/g" && "$NNC" build model.nn -o prog && ./prog --quiet --threads 2 > built.txt &&
        mv out.safetensors built.safetensors && mv pred.npy built.npy) > "$tmp/log" 2>&1; then
    fail "$c: nnc build: $(tail -5 "$tmp/log")"
    continue
  fi
  if ! (cd "$tmp/g" && "$NNC" run model.nn --quiet --threads 2 > run.txt) > "$tmp/log" 2>&1; then
    fail "$c: nnc run: $(tail -5 "$tmp/log")"
    continue
  fi
  (cd "$tmp/g" && cmp -s built.safetensors out.safetensors && cmp -s built.npy pred.npy &&
   cmp -s built.txt run.txt) || fail "$c: nnc run and nnc build give different bits"
done
"$NNC" build m4.nn -o prog4 > "$tmp/log" 2>&1 || fail "build m4: $(cat "$tmp/log")"
./prog4 --seed 11 --threads 2 --quiet > built.txt && mv w.safetensors built.safetensors
"$NNC" run m4.nn --seed 11 --threads 2 --quiet > run.txt || fail "run m4"
cmp -s built.safetensors w.safetensors && cmp -s built.txt run.txt ||
  fail "random init with a seed: nnc run and nnc build differ"
"$NNC" run m4.nn --seed 12 --threads 2 --quiet > /dev/null
cmp -s built.safetensors w.safetensors && fail "the seed is not passed to the program (seeds 11 and 12 agree)"
# Program options are checked like a built program's.
"$NNC" run m4.nn --epochs nope > /dev/null 2> err.txt && fail "a bad program option was accepted"
grep -q "epochs" err.txt || fail "bad option message: $(cat err.txt)"

# --- 2. no process started -----------------------------------------------------------
if command -v strace > /dev/null && strace -f -qq -o /dev/null true 2> /dev/null; then
  rm -rf "$NNC_CACHE_DIR"
  strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o trace.txt "$NNC" run m5.nn --quiet > /dev/null ||
    fail "nnc run under strace"
  execs=$(grep -c 'execve(' trace.txt)
  # Threads are clones with CLONE_THREAD; a process would be a clone without it.
  procs=$(grep -E 'clone3?\(|fork\(' trace.txt | grep -v -c CLONE_THREAD)
  [ "$execs" = 1 ] || fail "nnc run executed $execs programs: $(grep execve trace.txt)"
  [ "$procs" = 0 ] || fail "nnc run started $procs processes: $(grep -E 'clone|fork' trace.txt | grep -v CLONE_THREAD)"
  # The trace can fail: nnc build starts the C compiler.
  rm -rf "$NNC_CACHE_DIR"
  strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o trace2.txt "$NNC" build m5.nn -o p5 > /dev/null
  [ "$(grep -c 'execve(' trace2.txt)" -gt 1 ] || fail "the process trace does not see nnc build's compiler"
else
  echo "SKIP: strace cannot trace here; nnc run's 'no process' check not made"
fi

# --- 3. the cache ---------------------------------------------------------------------
rm -rf "$NNC_CACHE_DIR"
"$NNC" run m6.nn --quiet --verbose > /dev/null 2> v1.txt
"$NNC" run m6.nn --quiet --verbose > /dev/null 2> v2.txt
grep -q "compiling the model" v1.txt || fail "cold run did not compile: $(cat v1.txt)"
grep -q "in the cache" v2.txt || fail "warm run did not hit the cache: $(cat v2.txt)"
[ "$(stat -c %a "$NNC_CACHE_DIR")" = 700 ] || fail "cache directory mode $(stat -c %a "$NNC_CACHE_DIR")"
entry=$(ls "$NNC_CACHE_DIR"/*.o)
[ "$(echo "$entry" | wc -l)" = 1 ] || fail "expected one object entry: $entry"
cp w.safetensors good.safetensors
damage() {  # $1: what to do to the entry; then the next run rebuilds it and is right
  cp "$entry" saved.o
  case $1 in
    truncate) truncate -s 100 "$entry" ;;
    empty) : > "$entry" ;;
    garble) printf '\x5a\x5a\x5a\x5a' | dd of="$entry" bs=1 seek=$(( $(stat -c %s "$entry") / 2 )) conv=notrunc status=none ;;
    foreign) "$NNC" run m7.nn --quiet > /dev/null; cp "$(ls -t "$NNC_CACHE_DIR"/*.o | head -1)" "$entry" ;;
  esac
  "$NNC" run m6.nn --quiet --verbose > /dev/null 2> v3.txt || fail "$1 entry: the run failed: $(cat v3.txt)"
  grep -q "compiling the model" v3.txt || fail "$1 entry was used: $(cat v3.txt)"
  cmp -s w.safetensors good.safetensors || fail "$1 entry: different weights"
  cmp -s "$entry" saved.o || fail "$1 entry was not rewritten whole"
  "$NNC" run m6.nn --quiet --verbose > /dev/null 2> v4.txt
  grep -q "in the cache" v4.txt || fail "after the $1 entry was rebuilt, no hit: $(cat v4.txt)"
}
for how in truncate empty garble foreign; do damage $how; done

# Concurrent writers on a cold cache: all succeed, one whole entry, no temporaries.
rm -rf "$NNC_CACHE_DIR"
pids=()
for i in 1 2 3 4; do
  mkdir -p "c$i" && cp m6.nn "c$i/" && (cd "c$i" && "$NNC" run m6.nn --quiet > /dev/null) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent run failed"; done
for i in 1 2 3 4; do cmp -s "c$i/w.safetensors" good.safetensors || fail "concurrent run $i: different weights"; done
"$NNC" cache --stats > stats.txt
grep -q "^entries: 1$" stats.txt || fail "concurrent writers: $(cat stats.txt)"
grep -q unfinished stats.txt && fail "concurrent writers left temporaries: $(cat stats.txt)"

# LRU eviction: room for two entries; a hit refreshes one.
rm -rf "$NNC_CACHE_DIR"
"$NNC" run m4.nn --quiet > /dev/null
size=$(stat -c %s "$NNC_CACHE_DIR"/*.o)
export NNC_CACHE_MAX=$((size * 5 / 2))
"$NNC" run m5.nn --quiet > /dev/null
sleep 0.05
"$NNC" run m4.nn --quiet --verbose > /dev/null 2> v.txt  # a hit: m4 is now the most recent
grep -q "in the cache" v.txt || fail "eviction: m4 should still be cached: $(cat v.txt)"
sleep 0.05
"$NNC" run m6.nn --quiet > /dev/null                     # evicts m5, the least recently used
[ "$(ls "$NNC_CACHE_DIR"/*.o | wc -l)" = 2 ] || fail "eviction: $(ls -l "$NNC_CACHE_DIR")"
"$NNC" run m4.nn --quiet --verbose > /dev/null 2> v.txt
grep -q "in the cache" v.txt || fail "eviction removed the recently used entry"
"$NNC" run m5.nn --quiet --verbose > /dev/null 2> v.txt
grep -q "compiling the model" v.txt || fail "eviction kept the least recently used entry"
unset NNC_CACHE_MAX

# nnc build compiles through the same cache.
"$NNC" build m7.nn -o p7 --verbose 2> b1.txt && "$NNC" build m7.nn -o p7 --verbose 2> b2.txt || fail "nnc build m7"
grep -q "in the cache" b1.txt && fail "first nnc build hit the cache"
grep -q "in the cache" b2.txt || fail "second nnc build missed the cache: $(cat b2.txt)"
"$NNC" cache --clear > clear.txt && grep -q "removed" clear.txt || fail "cache --clear: $(cat clear.txt)"
"$NNC" cache --stats | grep -q "^entries: 0$" || fail "entries after --clear"

# --- 4. the fallback -----------------------------------------------------------------
NNC_NO_JIT=1 "$NNC" run m6.nn --quiet --verbose > /dev/null 2> f.txt || fail "fallback run: $(cat f.txt)"
grep -q "system compiler" f.txt || fail "the fallback does not say so: $(cat f.txt)"
cmp -s w.safetensors good.safetensors || fail "fallback: different weights"
NNC_NO_JIT=1 "$NNC" run m6.nn --quiet --verbose > /dev/null 2> f.txt
grep -q "in the cache" f.txt || fail "fallback: no cache hit: $(cat f.txt)"

if [ $failed = 0 ]; then echo "test_jit: all passed"; else echo "test_jit: $failed failed"; fi
[ $failed = 0 ]

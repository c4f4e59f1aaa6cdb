#!/bin/bash
# test_install.sh — `cmake --install` into a temporary prefix gives a working nnc: it
# builds and runs a model with what it finds relative to itself (<prefix>/include/nnc,
# <prefix>/lib/nnc), and opens nothing in the source or build tree (checked with strace
# where it can trace).
#
#   bash tests/test_install.sh path/to/build/nnc
set -u
NNC=$(realpath "$1")
build=$(dirname "$NNC")
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export NNC_CACHE_DIR=$tmp/cache OMP_WAIT_POLICY=passive
unset NNC_INCLUDE_DIR NNC_RUNTIME_LIB
failed=0
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; exit 1; }
for f in bin/nnc include/nnc/nn.h include/nnc/nn_kernels.h include/nnc/nn_kernels_api.h include/nnc/nn_kernels.cl; do
  [ -f "$tmp/prefix/$f" ] || fail "not installed: $f"
done
ls "$tmp"/prefix/lib*/nnc/libnnrt.a > /dev/null 2>&1 || fail "libnnrt.a not installed"
nnc=$tmp/prefix/bin/nnc
mkdir "$tmp/w" && cd "$tmp/w" || exit 1
cat > m.nn <<'EOT'
import numpy as np
x = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
y = np.array([0, 1, 1, 0])
model = Sequential([Dense(3, activation='tanh', input_shape=(2,)), Dense(2, activation='softmax')])
model.compile(optimizer='sgd', loss='sparse_categorical_crossentropy')
model.fit(x, y, epochs=2, batch_size=2)
model.save_weights('w.safetensors')
EOT
trace() {
  if command -v strace > /dev/null && strace -f -qq -o /dev/null true 2> /dev/null; then
    strace -f -qq -e trace=open,openat,execve -o "$1" "${@:2}"
  else
    "${@:2}"
  fi
}
trace t1.txt "$nnc" build m.nn -o prog > b.log 2>&1 || fail "installed nnc build: $(cat b.log)"
./prog --quiet --seed 5 && mv w.safetensors built.safetensors || fail "the installed nnc's program"
trace t2.txt "$nnc" run m.nn --quiet --seed 5 > r.log 2>&1 || fail "installed nnc run: $(cat r.log)"
cmp -s built.safetensors w.safetensors || fail "installed nnc: run and build differ"
for t in t1.txt t2.txt; do
  [ -f $t ] || continue
  # Successful opens only (failed lookups may probe anywhere).
  used=$(grep -v ENOENT $t | grep -oE '"(/[^"]*)"' | tr -d '"' | grep -E "^($src|$build)/" | sort -u)
  [ -z "$used" ] || fail "the installed nnc used the source or build tree: $used"
done
[ $failed = 0 ] && echo "test_install: all passed"
[ $failed = 0 ]

#!/bin/bash
# test_tutorials.sh — the tutorial corpus: every tests/tutorials/*.nn, a Keras/TensorFlow
# tutorial script as its authors write it, compiles unedited, trains briefly and prints
# what its NAME.expect says (one extended regex per line, each matched by some line of
# stdout, in order).
#   bash tests/test_tutorials.sh path/to/nnc [NAME ...]
# Runs in a scratch copy of tests/tutorials, so relative data paths resolve and the
# files scripts write (weights, plots, logs) land there. Fashion-MNIST comes from
# $NNC_DATA or /usr/share/datasets; without it the scripts that need it are skipped.
nnc=${1:?usage: test_tutorials.sh path/to/nnc [NAME ...]}
shift
nnc=$(cd "$(dirname "$nnc")" && pwd)/$(basename "$nnc")
src=$(cd "$(dirname "$0")" && pwd)/tutorials
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src"/. "$tmp"/
cd "$tmp" || exit 1
have_fashion=0
for d in "${NNC_DATA:-/nonexistent}" /usr/share/datasets; do
  [ -e "$d/fashion-mnist/t10k-labels-idx1-ubyte.gz" ] || [ -e "$d/fashion-mnist/t10k-labels-idx1-ubyte" ] && have_fashion=1
done
names=("$@")
[ ${#names[@]} -eq 0 ] && for f in *.nn; do names+=("${f%.nn}"); done
pass=0 fail=0 skip=0
for name in "${names[@]}"; do
  if [ $have_fashion = 0 ] && grep -q 'mnist' "$name.nn"; then
    echo "SKIP $name: Fashion-MNIST not installed"; skip=$((skip + 1)); continue
  fi
  if ! "$nnc" build "$name.nn" -o "$name.bin" >"$name.build" 2>&1; then
    echo "FAIL $name: nnc build failed"; sed 's/^/  /' "$name.build" | head -20; fail=$((fail + 1)); continue
  fi
  timeout 120 "./$name.bin" --epochs 1 --seed 1 --threads 1 >"$name.out" 2>"$name.err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "FAIL $name: exit status $rc"; tail -5 "$name.err" | sed 's/^/  /'; fail=$((fail + 1)); continue
  fi
  # Each expectation must match a line after the one the previous matched.
  line=0 ok=1
  while IFS= read -r re; do
    [ -z "$re" ] && continue
    found=$(tail -n +$((line + 1)) "$name.out" | grep -n -m1 -E -- "$re" | cut -d: -f1)
    if [ -z "$found" ]; then
      echo "FAIL $name: no line matching /$re/ (after line $line) in:"; sed 's/^/  | /' "$name.out" | tail -25
      ok=0; break
    fi
    line=$((line + found))
  done <"$name.expect"
  if [ $ok = 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
# What the scripts drew and wrote must be there, too.
for name in "${names[@]}"; do
  [ -f "$name.files" ] && [ -f "$name.bin" ] || continue
  for f in $(cat "$name.files"); do
    [ -s "$f" ] && grep -q . "$f" || { echo "FAIL $name: $f was not written"; fail=$((fail + 1)); }
    case $f in *.svg) grep -q '</svg>' "$f" || { echo "FAIL $name: $f is not a whole SVG"; fail=$((fail + 1)); } ;; esac
  done
done
echo "tutorials: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]

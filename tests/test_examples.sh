#!/bin/bash
# test_examples.sh — every examples/*.nn checks cleanly; the summaries of the CNNs are
# exactly Keras's (tests/expected/*.summary, counts from Keras's documented formulas:
# Conv2D kh*kw*cin*filters + filters, Dense in*units + units).
#   bash tests/test_examples.sh path/to/nnc
nnc=${1:?usage: test_examples.sh path/to/nnc}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

for f in "$root"/examples/*.nn; do
  name=${f##*/}
  timeout 20 "$nnc" check "$f" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 0 ]; then bad "$name: exit status $rc"; sed 's/^/  /' "$tmp/err" | head -5; continue; fi
  if grep -qE 'error|Sanitizer|runtime error:' "$tmp/err"; then bad "$name: errors on stderr"; head -5 "$tmp/err"; continue; fi
  if ! grep -q '^Total params: ' "$tmp/out"; then bad "$name: no summary"; continue; fi
  expected="$root/tests/expected/${name%.nn}.summary"
  if [ -f "$expected" ] && ! diff -u "$expected" "$tmp/out" >"$tmp/diff"; then
    bad "$name: summary differs from tests/expected/${expected##*/}"; head -20 "$tmp/diff"; continue
  fi
  pass=$((pass + 1))
done

# The two counts the front-end issue names, independent of the expected files.
"$nnc" check "$root/examples/fashion_cnn.nn" 2>/dev/null | grep -qx 'Total params: 121,930' || bad "fashion_cnn.nn: Total params is not 121,930"
"$nnc" check "$root/examples/cnn_224.nn" 2>/dev/null | grep -qx 'Total params: 11,964,042' || bad "cnn_224.nn: Total params is not 11,964,042"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]

#!/bin/bash
# test_bad.sh — every tests/bad/*.nn must be refused exactly as its first line says.
#   bash tests/test_bad.sh path/to/nnc
# Line 1 of each file: `# expect: LINE:COL: error: MESSAGE-PREFIX`. The file must make
# `nnc check` exit with status 1 (no signal, no internal error, no sanitizer report,
# within 10 s), and the first `file:line:col: error:` line on stderr, with the path
# stripped, must start with the expectation.
# Files that cannot carry a comment (binary, empty) take theirs from NAME.expect.
nnc=${1:?usage: test_bad.sh path/to/nnc}
nnc=$(cd "$(dirname "$nnc")" && pwd)/$(basename "$nnc")  # the test cds into tests/bad
dir=$(cd "$(dirname "$0")" && pwd)/bad
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$dir"/*.nn; do
  name=${f##*/}
  if [ -f "${f%.nn}.expect" ]; then expect=$(head -n1 "${f%.nn}.expect")
  else expect=$(head -n1 "$f" | tr -d '\0'); fi
  expect=${expect#\# expect: }
  if [[ ! $expect =~ ^[0-9]+:[0-9]+:\ error:\  ]]; then
    echo "FAIL $name: no '# expect: LINE:COL: error: ...' on line 1"; fail=$((fail + 1)); continue
  fi
  # Relative data paths in the corpus resolve against tests/bad, as a user's would
  # against their working directory.
  (cd "$dir" && NNC_DATA=/nonexistent timeout 10 "$nnc" check "$name") >"$tmp/out" 2>"$tmp/err"
  rc=$?
  got=$(grep -a -m1 -E '^[^ ]*:[0-9]+:[0-9]+: error: ' "$tmp/err" | sed -E 's/^.*\.nn:([0-9]+:[0-9]+: error: )/\1/')
  why=
  if [ $rc -eq 124 ]; then why="timed out"
  elif [ $rc -ne 1 ]; then why="exit status $rc, want 1"
  elif grep -aqE 'internal error|Sanitizer|runtime error:' "$tmp/err"; then why="internal error or sanitizer report"
  elif [[ $got != "$expect"* ]]; then why="wrong diagnostic"
  fi
  if [ -n "$why" ]; then
    echo "FAIL $name: $why"
    echo "  want: $expect"
    echo "  got:  ${got:-<no error line>}"
    grep -aE 'internal error|Sanitizer|runtime error:' "$tmp/err" | head -3 | sed 's/^/  /'
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]

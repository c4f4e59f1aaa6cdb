#!/bin/bash
# The OpenCL kernels' GPU layout (local-memory tiles) and the work-group search, run on
# whatever device there is (PoCL in CI, whose own layout is the CPU one):
#  - golden tests with NNC_CL_CPU=0 at work-groups of 256 (the largest tiles);
#  - the search: a fresh cache gets a remembered choice (a .wg file), the second run
#    reuses it, results equal the CPU layout's to float rounding, a bad NNC_CL_WG is refused.
# Without an OpenCL device this fails, unless NNC_NO_OPENCL=1.
#   bash tests/test_opencl_layouts.sh path/to/nnc
set -u
NNC=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if ! "$NNC" devices >/dev/null 2>&1; then
  if [ "${NNC_NO_OPENCL:-0}" = 1 ]; then echo "skipped: no OpenCL device (NNC_NO_OPENCL=1)"; exit 0; fi
  echo "FAIL: no OpenCL device ('nnc devices' says why)"; exit 1
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

if NNC_CL_CPU=0 NNC_CL_WG=256 bash "$ROOT/tests/test_golden_opencl.sh" "$NNC" cnn_adam_strided cnn_same_avg_reshape batchnorm cnn_pool_fused cnn_trim >"$WORK/golden.log" 2>&1
then ok "golden cases, GPU layout, work-groups of 256"; else tail -20 "$WORK/golden.log"; bad "golden cases, GPU layout"; fi

"$NNC" build "$ROOT/examples/relu_unit.nn" --target opencl -o "$WORK/relu" || { bad "build"; exit 1; }
cd "$WORK"
export NNC_CACHE_DIR=$WORK/cache
./relu >cpu.out 2>&1
NNC_CL_CPU=0 ./relu >gpu1.out 2>&1
wg=$(cat cache/*.wg 2>/dev/null)
case "$wg" in 64|128|256) ok "search remembered work-groups of $wg" ;; *) bad "no remembered choice ('$wg')" ;; esac
before=$(stat -c %y cache/*.wg 2>/dev/null)
NNC_CL_CPU=0 ./relu >gpu2.out 2>&1
[ "$(ls cache/*.wg | wc -l)" = 1 ] && [ "$(stat -c %y cache/*.wg)" = "$before" ] && [ "$(grep "final loss" gpu1.out)" = "$(grep "final loss" gpu2.out)" ] && ok "second run reuses it (no new search, same loss)" || bad "second run"
a=$(awk '/final loss/ {print $3}' cpu.out) b=$(awk '/final loss/ {print $3}' gpu1.out)
if awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-6 + 1e-3 * a) }'
then ok "layouts agree (loss $a vs $b)"; else bad "layouts differ (loss '$a' vs '$b')"; fi
if NNC_CL_WG=7 ./relu >bad.out 2>&1; then bad "NNC_CL_WG=7 accepted"
elif grep -q "NNC_CL_WG must be 64, 128 or 256" bad.out; then ok "NNC_CL_WG=7 refused"; else cat bad.out; bad "NNC_CL_WG message"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

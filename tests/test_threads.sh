#!/usr/bin/env bash
# A built program's thread count and wait policy: the default follows the CPUs the
# process may use (affinity mask, cgroup quota), --threads and OMP_NUM_THREADS override
# it, and with more than one thread the program runs with OMP_WAIT_POLICY=passive unless
# the user chose a policy. Run as: bash tests/test_threads.sh NNC
set -u
NNC=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
pass=0 fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass=$((pass + 1)); else echo "FAIL $1: expected '$2', got '$3'"; fail=$((fail + 1)); fi
}
# The thread count the program reports on its --json start line.
threads() { "$@" --epochs 0 --json 2>/dev/null | head -1 | sed -n 's/^{"threads":\([0-9]*\)}$/\1/p'; }

if ! "$NNC" build "$ROOT/examples/linear_regression.nn" -o lr 2>build.log; then
  cat build.log; echo "0 passed, 1 failed"; exit 1
fi
# A sanitizer build's program links libgomp twice (the static copy, and libgomp.so.1 as
# ldd shows), so libgomp's environment report, which this test counts, appears twice
# per start. The thread logic is the same; test it unsanitized.
if ldd ./lr | grep -q libasan; then
  echo "skipped: sanitized program (two libgomp copies double the counts this test reads)"; exit 0
fi
unset OMP_NUM_THREADS OMP_WAIT_POLICY GOMP_SPINCOUNT
cpus=$(nproc)   # nproc also honours the affinity mask (not the cgroup quota)
n=$(threads ./lr)
if [ -n "$n" ] && [ "$n" -ge 1 ] && [ "$n" -le "$cpus" ]; then pass=$((pass + 1)); else echo "FAIL default threads '$n' not in [1, $cpus]"; fail=$((fail + 1)); fi
if command -v taskset >/dev/null; then
  check "taskset -c 0" 1 "$(threads taskset -c 0 ./lr)"
  if [ "$cpus" -ge 2 ]; then check "taskset -c 0,1" 2 "$(threads taskset -c 0,1 ./lr)"; fi
  check "taskset -c 0 --threads 3" 3 "$(threads taskset -c 0 ./lr --threads 3)"
fi
check "--threads 3" 3 "$(threads ./lr --threads 3)"
check "--threads=1" 1 "$(threads ./lr --threads=1)"
check "OMP_NUM_THREADS=3" 3 "$(OMP_NUM_THREADS=3 threads ./lr)"
check "OMP_NUM_THREADS=3 --threads 2" 2 "$(OMP_NUM_THREADS=3 threads ./lr --threads 2)"
check "--help names the default" 1 "$(./lr --help | grep -c 'affinity mask, cgroup CPU quota')"

# The wait policy, as libgomp reports it (OMP_DISPLAY_ENV=verbose prints GOMP_SPINCOUNT
# at each start; 0 is passive). Other OpenMP runtimes print no such line: skipped.
spin() { OMP_DISPLAY_ENV=verbose "$@" --epochs 0 --quiet 2>&1 >/dev/null | sed -n "s/^ *GOMP_SPINCOUNT = '\([0-9]*\)'/\1/p" | tr '\n' ' '; }
if [ -n "$(spin ./lr --threads 1)" ]; then
  # Values as words: "300000 0 " is a start with libgomp's default spinning, then the
  # second start's passive waiting.
  check "2 threads: started again, passive" "2 0" "$(spin ./lr --threads 2 | awk '{print NF, $NF}')"
  check "1 thread: started once" "1" "$(spin ./lr --threads 1 | awk '{print NF}')"
  check "the user's OMP_WAIT_POLICY=active is kept" "1 nonzero" "$(OMP_WAIT_POLICY=active spin ./lr --threads 2 | awk '{print NF, ($1 > 0 ? "nonzero" : "zero")}')"
  check "the user's GOMP_SPINCOUNT is kept" "1 1000" "$(GOMP_SPINCOUNT=1000 spin ./lr --threads 2 | awk '{print NF, $1}')"
  # Same pid, same arguments: the second start parses and trains exactly like the first.
  out=$(./lr --threads 2 --epochs 3 --seed 7 --json | grep -c '"epoch"')
  check "options survive the second start" 3 "$out"
else
  echo "skip: not libgomp"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# The nnc command line: usage errors are user errors (exit 1, one clear line), never
# internal errors; outputs appear whole or not at all. Run as: bash tests/test_cli.sh NNC
set -u
NNC=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
pass=0 fail=0
# expect STATUS PATTERN -- ARGS...: exit status and a line of stderr matching PATTERN.
expect() {
  local status=$1 pattern=$2
  shift 3
  "$NNC" "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ "$rc" -eq "$status" ] && grep -qE -- "$pattern" "$WORK/err" && ! grep -q "internal error" "$WORK/err"; then
    pass=$((pass + 1))
  else
    echo "FAIL nnc $*: exit $rc, stderr:"; sed 's/^/  /' "$WORK/err" | head -5; fail=$((fail + 1))
  fi
}
ex=$ROOT/examples/relu_unit.nn
expect 1 '^usage: nnc' -- 
expect 1 "needs a \.nn file" -- check
expect 1 "unknown command 'chek'; did you mean 'check'" -- chek "$ex"
expect 1 "cannot open '/nonexistent\.nn'" -- check /nonexistent.nn
expect 1 "is a directory" -- check "$ROOT/examples"
expect 1 "needs -o PROG" -- build "$ex"
expect 1 "cannot write /nonexistent/dir/prog" -- build "$ex" -o /nonexistent/dir/prog
expect 1 "unknown option '--bogus'" -- check "$ex" --bogus
expect 1 "unknown target 'cuda'; targets: c, opencl" -- emit "$ex" --target cuda -o "$WORK/src"
expect 1 "'devices' takes no file" -- devices "$ex"
expect 1 "'--clear' is an option of 'nnc cache'" -- check "$ex" --clear
expect 1 "unknown stage 'bogus'" -- graph "$ex" --stage bogus
expect 1 "'run' takes no -o" -- run "$ex" -o "$WORK/prog"
expect 1 "epochs expects an integer" -- run "$ex" --epochs many
expect 1 "unknown target 'cuda'" -- run "$ex" --target cuda
expect 1 "does not take --mpi" -- run "$ex" --mpi
expect 1 "option '-o' needs a value" -- build "$ex" -o
expect 1 "--layout: expected auto, nhwc, packed or cols, got 'nchw'" -- build "$ex" --layout=nchw -o "$WORK/prog"
expect 1 "option '--layout' needs a value" -- graph "$ex" --layout
[ ! -e /nonexistent/dir/prog.tmp ] && pass=$((pass + 1)) || { echo "FAIL left a temporary file"; fail=$((fail + 1)); }
# graph writes DOT with every stage; the autodiff stage has the optimizer updates.
if "$NNC" graph "$ex" --stage autodiff -o "$WORK/g.dot" && grep -q '^digraph' "$WORK/g.dot" && grep -q 'adam_update' "$WORK/g.dot"; then
  pass=$((pass + 1))
else echo "FAIL graph --stage autodiff"; fail=$((fail + 1)); fi
if "$NNC" graph "$ex" | grep -q 'adam_update'; then echo "FAIL parsed stage shows updates"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
# Every stage of the pass list can be shown.
for stage in parsed autodiff fused optimized scheduled planned; do
  if "$NNC" graph "$ex" --stage $stage | grep -q '^digraph'; then pass=$((pass + 1)); else echo "FAIL graph --stage $stage"; fail=$((fail + 1)); fi
done
# The layout pass shows its choice at the optimized stage: --layout=packed gives every
# convolution and Dense layer a pack node and the packed kernel, nhwc none; the OpenCL
# target packs by default the flipped data gradient of a stride-1 convolution (its CPU
# layout would take it as dot products), not the forward products nor Dense layers, and
# never keeps im2col's matrix.
cnn=$ROOT/examples/fashion_cnn.nn
if "$NNC" graph "$cnn" --stage optimized --layout=packed | grep -q 'conv2d + bias + relu \[packed\]' &&
   "$NNC" graph "$cnn" --stage optimized --layout packed | grep -q 'pack_weights \[panels-flip\]' &&
   ! "$NNC" graph "$cnn" --stage optimized --layout=nhwc | grep -qE 'packed|pack_weights' &&
   ! "$NNC" graph "$cnn" --stage fused --layout=packed | grep -qE 'packed|pack_weights' &&
   "$NNC" graph "$cnn" --stage optimized --target opencl >"$WORK/cl.dot" &&
   grep -q 'pack_weights \[panels-flip\]' "$WORK/cl.dot" && ! grep -q 'pack_weights \[panels\]' "$WORK/cl.dot" &&
   ! grep -q 'pack_weights \[panels^T\]' "$WORK/cl.dot" &&
   ! "$NNC" graph "$cnn" --stage optimized --layout=nhwc --target opencl | grep -qE 'packed|pack_weights' &&
   "$NNC" graph "$cnn" --stage optimized --layout=cols | grep -q 'conv2d + bias + relu \[NHWC+cols\]' &&
   ! "$NNC" graph "$cnn" --stage optimized --layout=cols --target opencl | grep -q 'cols'; then
  pass=$((pass + 1))
else echo "FAIL graph --layout"; fail=$((fail + 1)); fi
# The OpenCL target writes readable kernels named after the graph, the library, the host.
if "$NNC" emit "$ex" --target opencl -o "$WORK/cl" && grep -q '^void dense_fwd_matmul_bias_relu(__global' "$WORK/cl/model.cl" &&
   grep -q 'nncl_gemm' "$WORK/cl/nn_kernels.cl" && grep -q 'nn_cl_open' "$WORK/cl/model.c"; then
  pass=$((pass + 1))
else echo "FAIL emit --target opencl"; fail=$((fail + 1)); fi
# A built OpenCL program refuses a device that is not there, naming what exists.
if "$NNC" build "$ex" --target opencl -o "$WORK/cl_prog" 2>"$WORK/err"; then
  "$WORK/cl_prog" --device 999 >"$WORK/out" 2>"$WORK/err"; rc=$?
  if [ $rc -eq 1 ] && grep -qE "no OpenCL (device 999|platform)" "$WORK/err"; then pass=$((pass + 1)); else echo "FAIL --device 999: exit $rc"; cat "$WORK/err"; fail=$((fail + 1)); fi
  NNC_DEVICE=x "$WORK/cl_prog" >"$WORK/out" 2>"$WORK/err"; rc=$?
  if [ $rc -eq 1 ] && grep -qE "NNC_DEVICE must be|no OpenCL platform" "$WORK/err"; then pass=$((pass + 1)); else echo "FAIL NNC_DEVICE=x: exit $rc"; fail=$((fail + 1)); fi
else echo "FAIL build --target opencl"; cat "$WORK/err"; fail=$((fail + 1)); fi
# A built program needs only the C library where it runs: zlib and OpenMP are linked in
# (a sanitizer build of nnc makes sanitized programs, which need their runtimes anyway).
if "$NNC" build "$ex" -o "$WORK/relu" && [ -x "$WORK/relu" ] &&
   { ldd "$WORK/relu" | grep -q libasan || ! ldd "$WORK/relu" | grep -qE 'libz\.|libgomp'; }; then
  pass=$((pass + 1))
else echo "FAIL built program depends on:"; ldd "$WORK/relu" 2>&1 | sed 's/^/  /'; fail=$((fail + 1)); fi
# A failed check leaves no output file behind.
printf 'model = Sequential([Dense(0, input_shape=(2,))])\n' >"$WORK/bad.nn"
"$NNC" build "$WORK/bad.nn" -o "$WORK/prog" 2>/dev/null
if [ $? -eq 1 ] && [ ! -e "$WORK/prog" ] && [ ! -e "$WORK/prog.tmp" ]; then pass=$((pass + 1)); else echo "FAIL bad build left output"; fail=$((fail + 1)); fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

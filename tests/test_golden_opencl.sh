#!/bin/bash
# The golden tests (float64 PyTorch reference) on the OpenCL target, on the default
# device (PoCL in CI). Without an OpenCL device this fails, unless NNC_NO_OPENCL=1.
#   bash tests/test_golden_opencl.sh path/to/nnc
set -u
if ! "$1" devices >/dev/null 2>&1; then
  if [ "${NNC_NO_OPENCL:-0}" = 1 ]; then echo "skipped: no OpenCL device (NNC_NO_OPENCL=1)"; exit 0; fi
  echo "FAIL: no OpenCL device ('nnc devices' says why); install pocl-opencl-icd or set NNC_NO_OPENCL=1"
  "$1" devices
  exit 1
fi
NNC_TARGET=opencl exec bash "$(dirname "$0")/test_golden.sh" "$@"

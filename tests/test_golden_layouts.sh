#!/bin/bash
# The golden tests (float64 PyTorch reference) with every convolution and Dense layer in
# the packed layout (compiler/ir/layout.c): weights packed once per step, convolutions
# without im2col, stride-1 data gradients as flipped convolutions. test_golden.sh runs
# the cost model's choice.
#   bash tests/test_golden_layouts.sh path/to/nnc
set -u
NNC_BUILD_FLAGS=--layout=packed exec bash "$(dirname "$0")/test_golden.sh" "$@"

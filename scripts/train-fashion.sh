#!/usr/bin/env bash
# The main job: build nnc, compile examples/fashion_cnn.nn, train it on Fashion-MNIST
# (Debian's dataset-fashion-mnist) and print its accuracy. EPOCHS=N to change the length.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nnc nnrt
./build/nnc build examples/fashion_cnn.nn -o build/fashion_cnn
cd build && ./fashion_cnn --epochs "${EPOCHS:-5}"

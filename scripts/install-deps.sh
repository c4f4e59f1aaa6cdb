#!/usr/bin/env bash
# Installs what nnc needs to build, test and train, from Debian's packages.
set -euo pipefail
pkgs=(build-essential cmake flex bison zlib1g-dev libhdf5-dev hdf5-tools unzip libcriterion-dev clang libclang-rt-14-dev
      dataset-fashion-mnist ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
      libopenmpi-dev openmpi-bin llvm-14-dev libclang-14-dev libclang-cpp14-dev strace)
# benchmarks/frameworks.py (not CI): PyTorch, and venv for its Keras/TensorFlow side;
# benchmarks/kernel_lab.py: OpenBLAS.
[ "${1:-}" = --bench ] && pkgs+=(python3-torch python3-numpy python3-venv libopenblas-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

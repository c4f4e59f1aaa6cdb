#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: the unit and end-to-end tests,
# the unit tests again under AddressSanitizer + UBSan, and a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== build (release) and all tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== unit tests, malformed inputs and generated programs under ASan+UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNNC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
# Programs this nnc builds are sanitized too. Run only above: the long training test;
# valgrind (it cannot run sanitized programs); MPI (Open MPI's own allocations would be
# reported); nnc run and the install test (the JIT-compiled model's globals live in
# memory LeakSanitizer does not scan, so the program's data would be reported leaked).
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" \
  -E 'test_examples_train|test_valgrind|test_mpi|test_jit|test_install')

if [ -x tests/fuzz/run.sh ] || [ -f tests/fuzz/run.sh ]; then
  echo "== fuzzing the front end for ${FUZZ_SECONDS:-60}s"
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
  echo "== fuzzing the runtime's file loaders for 30s"
  bash tests/fuzz/run.sh 30 loaders
fi
echo "all tests passed"

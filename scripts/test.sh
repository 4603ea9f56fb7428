#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: the main build, then the file parsers,
# tokenizer, image code and Dense CRF again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD"
scripts/setup.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j"$(nproc)")

# Sanitizer job: only the parts without libtorch (they parse untrusted files).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPNPOVSS_CORE_ONLY=ON -DPNPOVSS_SANITIZE=ON \
  -DPNPOVSS_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$(nproc)")

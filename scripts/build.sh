#!/usr/bin/env bash
# Configures and builds pnp-ovss into ./build (Release, -O2): everything, or only the targets
# named (scripts/build.sh pnp-ovss builds the command line and the layers it needs).
set -euo pipefail
cd "$(dirname "$0")/.."
# Paths below the checkout are hashed relative to it, so clones in other folders share the
# compiler cache (a file including <torch/torch.h> takes ~20 s to compile).
export CCACHE_BASEDIR="$PWD"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build -j"$(nproc)" "${targets[@]}"

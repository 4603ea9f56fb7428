#!/usr/bin/env bash
# Copies the header-only dependencies (nlohmann/json, CLI11, stb) from this machine's
# /usr/include into third_party/, for building on a machine without apt (a GPU server with
# PyTorch's libtorch): CMake looks there when the system has none.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p third_party
for dir in nlohmann CLI stb; do
  [ -d "/usr/include/$dir" ] || { echo "missing /usr/include/$dir: run scripts/setup.sh first" >&2; exit 1; }
  rm -rf "third_party/$dir"
  cp -r "/usr/include/$dir" third_party/
done
echo "third_party/: $(du -sh third_party | cut -f1) of headers"

#!/usr/bin/env bash
# The installed library as another project uses it: `cmake --install` into a scratch prefix,
# then a separate CMake project (tests/install_consumer, find_package(pnpovss)) and a plain
# compiler call with pkg-config each build a program that segments the bundled photo with the
# tiny test model and must reproduce the golden label PNG pixel for pixel.
#
# Usage: tests/test_install.sh BUILD_DIR TEST_DATA_DIR
set -u
BUILD=$(cd "$1" && pwd)
DATA=$(cd "$2" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0
report() {  # NAME PROBLEM
  if [ -z "$2" ]; then echo "ok    $1"; else echo "FAIL  $1: $2"; failures=$((failures + 1)); fi
}
run_consumer() {  # BINARY
  "$1" "$DATA/blip_itm" "$DATA/images/coco_000000039769.png" "$DATA/golden/coco_000000039769.labels.png"
}

prefix=$WORK/prefix
if ! cmake --install "$BUILD" --prefix "$prefix" >"$WORK/install.log" 2>&1; then
  report "cmake --install" "$(tail -3 "$WORK/install.log")"
  exit 1
fi
problem=""
for f in include/pnpovss/pnpovss.h include/pnpovss/segmenter.h include/pnpovss/version.h bin/pnp-ovss; do
  [ -e "$prefix/$f" ] || problem="$problem missing $f;"
done
# Internals stay private: only the public headers are installed, none of them needs libtorch.
if [ -n "$(find "$prefix/include" -path '*/pnpovss/*/*' | head -1)" ]; then problem="$problem private headers installed;"; fi
if grep -rlE '#include *[<"](torch|ATen|c10)/' "$prefix/include" >/dev/null; then problem="$problem a public header names torch;"; fi
report "install tree" "$problem"

# find_package(pnpovss) from a separate CMake project.
problem=""
if ! cmake -S "$HERE/install_consumer" -B "$WORK/cmake" -DCMAKE_PREFIX_PATH="$prefix" >"$WORK/cmake.log" 2>&1 ||
   ! cmake --build "$WORK/cmake" >>"$WORK/cmake.log" 2>&1; then
  problem="the consumer project does not build: $(grep -m3 -i 'error' "$WORK/cmake.log")"
elif ! out=$(run_consumer "$WORK/cmake/consumer" 2>&1); then
  problem="$out"
fi
report "find_package(pnpovss) consumer reproduces the golden labels" "$problem"

# pkg-config and a plain compiler call.
problem=""
pc_dir=$(dirname "$(find "$prefix" -name pnpovss.pc | head -1)")
if ! command -v pkg-config >/dev/null; then
  echo "skip  pkg-config consumer (pkg-config not installed)"
elif ! flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs pnpovss 2>&1); then
  report "pkg-config consumer" "pkg-config: $flags"
else
  libdir=$(PKG_CONFIG_PATH=$pc_dir pkg-config --variable=libdir pnpovss)
  # shellcheck disable=SC2086
  if ! c++ "$HERE/install_consumer/consumer.cpp" -o "$WORK/pc_consumer" $flags -Wl,-rpath,"$libdir" \
       >"$WORK/pc.log" 2>&1; then
    problem="does not compile: $(head -3 "$WORK/pc.log")"
  elif ! out=$(run_consumer "$WORK/pc_consumer" 2>&1); then
    problem="$out"
  fi
  report "pkg-config consumer reproduces the golden labels" "$problem"
fi
[ "$failures" -eq 0 ]

#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of untrusted input (fuzz/, docs/fuzzing.md).
#
#   scripts/fuzz.sh [-j N] [SECONDS] [TARGET...]   build, replay the committed seeds, then fuzz
#                                                  each target (default: all) SECONDS (default 10)
#   scripts/fuzz.sh --replay TARGET PATH...        run files (or the files of folders) through
#                                                  one target once, without fuzzing
#
# Builds build-fuzz/ with Clang (core layers only, ASan + UBSan + libFuzzer). Each target starts
# from its committed seeds (fuzz/corpus/<target>, never written to) and a working corpus
# (build-fuzz/corpus/<target>, kept between runs); crashes, hangs (> 1 s per input), out of
# memory (> 2 GiB), leaks and failed checks are written to build-fuzz/findings/<target>/. One
# summary line per target; the exit status is 1 when any target found something (or a seed
# fails), 2 for a usage error. -j N (or FUZZ_JOBS) runs N targets at once (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-fuzz
export CCACHE_BASEDIR=$ROOT
# Stack traces of UBSan reports in the logs.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The dictionaries of each target (fuzz/dict/*.dict, joined: libFuzzer takes one -dict).
dicts_of() {
  case $1 in
    safetensors|checkpoint_index|hub_index) echo "json safetensors" ;;
    blip_config|clip_config|bridgetower_config) echo "json config" ;;
    preprocessor_config) echo "json preprocessor" ;;
    wordpiece|clip_tokenizer|roberta_tokenizer) echo "json tokenizer" ;;
    image|label_png) echo "image" ;;
    class_tags) echo "json class_tags" ;;
    settings) echo "json settings" ;;
    hub_headers) echo "http" ;;
    eval_run_dir) echo "json eval_run_dir" ;;
    tune_journal) echo "json tune_journal" ;;
    *) echo "json" ;;
  esac
}

# The options every run of a target gets: the limits that make a finding.
LIMITS=(-timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=2048)

all_targets() {
  for f in fuzz/targets/fuzz_*.cpp; do
    f=${f##*/fuzz_}
    echo "${f%.cpp}"
  done
}

build() {
  CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPNPOVSS_CORE_ONLY=ON \
    -DPNPOVSS_FUZZ=ON -DPNPOVSS_BUILD_TESTS=OFF -DPNPOVSS_BUILD_BENCH=OFF -DPNPOVSS_WITH_MPI=OFF >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target "${@/#/fuzz_}"
}

# The targets' scratch folders (fuzz/common.h) under one folder of this run, removed at the end
# even when a target crashed (which leaves its own behind).
scratch() {
  local shm=/dev/shm
  [ -d "$shm" ] || shm=${TMPDIR:-/tmp}
  export PNPOVSS_FUZZ_SCRATCH=$shm/pnpovss-fuzz.$$
  mkdir -p "$PNPOVSS_FUZZ_SCRATCH"
  trap 'rm -rf "$PNPOVSS_FUZZ_SCRATCH"' EXIT
}

# The files of the given files and folders, one per line.
input_files() {
  for p in "$@"; do
    if [ -d "$p" ]; then find "$p" -type f | sort; else echo "$p"; fi
  done
}

if [ "${1:-}" = --replay ]; then
  [ $# -ge 3 ] || usage
  target=$2
  shift 2
  [ -f "fuzz/targets/fuzz_$target.cpp" ] || { echo "no fuzz target '$target' (see fuzz/targets)" >&2; exit 2; }
  build "$target"
  mapfile -t files < <(input_files "$@")
  [ ${#files[@]} -gt 0 ] || { echo "no input files in $*" >&2; exit 2; }
  scratch
  status=0
  "$BUILD/fuzz/fuzz_$target" "${LIMITS[@]}" "${files[@]}" || status=$?
  exit "$status"
fi

JOBS=${FUZZ_JOBS:-1}
if [ "${1:-}" = -j ]; then
  [ $# -ge 2 ] || usage
  JOBS=$2
  shift 2
fi
case $JOBS in '' | *[!0-9]* | 0) usage ;; esac
SECONDS_PER_TARGET=10
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  SECONDS_PER_TARGET=$1
  shift
fi
if [ $# -gt 0 ]; then TARGETS=("$@"); else mapfile -t TARGETS < <(all_targets); fi
for t in "${TARGETS[@]}"; do
  [ -f "fuzz/targets/fuzz_$t.cpp" ] || { echo "no fuzz target '$t' (see fuzz/targets)" >&2; exit 2; }
done

build "${TARGETS[@]}"
mkdir -p "$BUILD/logs" "$BUILD/dict"
scratch

# Replays the seeds, fuzzes, and writes the summary line of target $1 to logs/<target>.summary.
run_target() {
  local t=$1 exe=$BUILD/fuzz/fuzz_$1 log=$BUILD/logs/$1.log seeds=fuzz/corpus/$1
  local work=$BUILD/corpus/$1 findings=$BUILD/findings/$1 dict=$BUILD/dict/$1.dict
  mkdir -p "$work" "$findings"
  : >"$dict"
  for d in $(dicts_of "$t"); do cat "fuzz/dict/$d.dict" >>"$dict"; done
  local before status=ok rc=0
  before=$(find "$findings" -maxdepth 1 -type f | wc -l)
  # The committed seeds first, each once: a seed that fails is a regression.
  mapfile -t seed_files < <(input_files "$seeds")
  if ! "$exe" "${LIMITS[@]}" -artifact_prefix="$findings/" "${seed_files[@]}" >"$log" 2>&1; then
    echo "$(printf '%-22s' "$t") SEED FAILED (a committed seed crashes; see $log)" >"$BUILD/logs/$t.summary"
    return 0
  fi
  local start=$BUILD/logs/$t.start
  touch "$start"
  # libFuzzer can hang for good in its own handler of a slow input (seen under ASan on a loaded
  # machine, after it wrote the input out): the run is killed a while after its time is up.
  timeout -s KILL $((SECONDS_PER_TARGET + 120)) \
    "$exe" "${LIMITS[@]}" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -dict="$dict" \
    -artifact_prefix="$findings/" "$work" "$seeds" >>"$log" 2>&1 || rc=$?
  # A timeout that does not happen again was the machine, not the input (a system call stalled
  # on a loaded machine): it is set aside in findings/<target>/unconfirmed/ and not counted.
  local unconfirmed=0
  while IFS= read -r f; do
    if "$exe" "${LIMITS[@]}" "$f" >>"$log" 2>&1; then
      mkdir -p "$findings/unconfirmed"
      mv "$f" "$findings/unconfirmed/"
      unconfirmed=$((unconfirmed + 1))
    fi
  done < <(find "$findings" -maxdepth 1 -name 'timeout-*' -newer "$start")
  local runs cov corpus found
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  found=$(($(find "$findings" -maxdepth 1 -type f | wc -l) - before))
  if [ "$found" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$unconfirmed" -eq 0 ]; }; then
    status="FOUND (exit $rc; see $log)"
  elif [ "$unconfirmed" -gt 0 ]; then
    status="ok (a timeout did not happen again: $findings/unconfirmed/)"
  fi
  printf '%-22s %10s execs  cov %6s edges  corpus %5s  findings %s  %s\n' "$t" "${runs:-?}" "${cov:-?}" \
    "$corpus" "$found" "$status" >"$BUILD/logs/$t.summary"
}

echo "fuzzing ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET} s each, $JOBS at a time"
running=0
for t in "${TARGETS[@]}"; do
  rm -f "$BUILD/logs/$t.summary"
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for t in "${TARGETS[@]}"; do
  if [ -f "$BUILD/logs/$t.summary" ]; then
    cat "$BUILD/logs/$t.summary"
    grep -qE 'FOUND|SEED FAILED' "$BUILD/logs/$t.summary" && failed=1
  else
    echo "$t: no result (see $BUILD/logs/$t.log)"
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "fuzzing found problems: inputs in $BUILD/findings/<target>/, replay with scripts/fuzz.sh --replay TARGET FILE"
  exit 1
fi

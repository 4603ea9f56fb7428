#!/usr/bin/env bash
# `pnp-ovss segment` end to end on the tiny random-weight model (tests/data/blip_itm, input 64,
# text layers 1..3, heads 1..4): the outputs of one image against the goldens in
# tests/data/golden (label PNG bytes, JSON without timings and version), --save-maps, a folder
# with one bad file, --class-tags, batches, workers, reruns that keep finished images, and bad
# input (one "error: ..." line on stderr, non-zero exit).
#
# Usage: tests/test_segment_cli.sh PATH/TO/pnp-ovss TEST_DATA_DIR
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PNP_OVSS_BINARY TEST_DATA_DIR" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$2
# Relative image and model paths, so that the JSON records do not depend on the checkout.
cd "$DATA" || exit 2
IMAGE=images/coco_000000039769.png
STEM=coco_000000039769
MODEL=blip_itm
GOLDEN=golden
for need in "$BIN" "$MODEL/model.safetensors" "$IMAGE" "$GOLDEN/$STEM.labels.png" "$GOLDEN/$STEM.json"; do
  if [ ! -e "$need" ]; then
    echo "missing $need" >&2
    exit 2
  fi
done
TINY=(--model "$MODEL" --size 64 --layer 2 --head 3)
CLASSES="cat, couch, remote control"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_segment_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/cli_test_lib.sh
source "$HERE/cli_test_lib.sh"

# The JSON record without the lines that change from run to run (the timings block) or from
# release to release (the version).
stable_json() {
  sed -e '/^  "timings": {/,/^  }/d' -e '/^  "version": /d' "$1"
}

# ---- one image, every output ----------------------------------------------------------------
single=$WORK/single
"$BIN" segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --out "$single" --save-maps >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -qE "^\[1/1\] $IMAGE [0-9]+\.[0-9] s$" "$ERR"; then
  problem="no progress line '[1/1] $IMAGE N.N s' on stderr"
elif ! grep -qE '^settings: preset=paper .*size=64 layer=2 head=3 ' "$OUT"; then
  problem="no 'settings: ...' line with the overrides on stdout"
elif ! grep -qE '^segmented 1 images, 0 failed, [0-9.]+ s$' "$OUT"; then
  problem="no summary line"
fi
report "single image (exit $status)" "$problem"

problem=""
for f in "$STEM.labels.png" "$STEM.overlay.png" "$STEM.json" "$STEM.maps.safetensors" \
  "$STEM.maps/cat.attn.png" "$STEM.maps/cat.iter0.gradcam.png" "$STEM.maps/cat.iter3.gradcam.png" \
  "$STEM.maps/cat.final.png" "$STEM.maps/remote_control.final.png" "$STEM.maps/couch.iter2.gradcam.png" \
  "$STEM.maps/dropped.iter0.png" "$STEM.maps/dropped.iter3.png"; do
  [ -s "$single/$f" ] || problem="$problem missing $f;"
done
leftovers=$(find "$single" -name '*.tmp*' | head -n 3)
[ -z "$leftovers" ] || problem="$problem temporary files left: $leftovers;"
report "outputs and --save-maps files exist" "$problem"

problem=""
want=$(sha256sum <"$GOLDEN/$STEM.labels.png" | cut -d' ' -f1)
got=$(sha256sum <"$single/$STEM.labels.png" | cut -d' ' -f1)
[ "$want" = "$got" ] || problem="sha256 $got, golden $want"
report "label PNG equals the golden" "$problem"

problem=""
if ! diff <(stable_json "$GOLDEN/$STEM.json") <(stable_json "$single/$STEM.json") >"$WORK/json.diff"; then
  problem="differs from the golden: $(head -c 600 "$WORK/json.diff" | tr '\n' '|')"
elif ! grep -q '"total": ' "$single/$STEM.json" || ! grep -q '"version": "pnp-ovss ' "$single/$STEM.json"; then
  problem="no total timing or version"
fi
report "JSON record equals the golden (timings and version aside)" "$problem"

problem=""
for name in '"labels"' '"final_maps"' '"iter3.class_maps"' '"pnp_ovss"'; do
  head -c 65536 "$single/$STEM.maps.safetensors" | grep -aq -- "$name" || problem="$problem no $name in the header;"
done
report "maps.safetensors holds the intermediates" "$problem"

# ---- a folder with one bad file, and --class-tags ----------------------------------------------
folder=$WORK/folder
mkdir -p "$folder"
cp "$IMAGE" "$folder/a.png"
cp "$IMAGE" "$folder/b.PNG"
printf 'plain text, not an image\n' >"$folder/broken.jpg"
printf 'ignored: not an image extension\n' >"$folder/notes.txt"
printf '{"b": ["cat", 2]}\n' >"$WORK/tags.json"
"$BIN" segment "$folder" --classes "$CLASSES" "${TINY[@]}" --class-tags "$WORK/tags.json" \
  --postprocess blur --out "$WORK/folder_out" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
errors=$(grep -c '^error: ' "$ERR")
if [ "$status" -ne 1 ]; then
  problem="exit status $status, expected 1"
elif [ "$errors" -ne 1 ] || ! grep -q "^error: $folder/broken.jpg: " "$ERR"; then
  problem="expected exactly one 'error: $folder/broken.jpg: ...' line, got $errors error lines"
elif crash_report; then
  problem="stderr holds a crash report"
elif ! grep -q '^\[1/3\] .*/a.png ' "$ERR" || ! grep -q '^\[2/3\] .*/b.PNG ' "$ERR"; then
  problem="no progress lines for a.png and b.PNG"
elif ! grep -qE '^segmented 2 images, 1 failed, [0-9.]+ s$' "$OUT"; then
  problem="no 'segmented 2 images, 1 failed' summary"
else
  for f in a.labels.png a.overlay.png a.json b.labels.png b.overlay.png b.json; do
    [ -s "$WORK/folder_out/$f" ] || problem="$problem missing $f;"
  done
  ls "$WORK/folder_out" | grep -q '^broken' && problem="$problem outputs written for the bad file;"
fi
report "folder with one bad file (exit $status)" "$problem"

problem=""
if [ -s "$WORK/folder_out/b.json" ]; then
  grep -q '"name": "couch"' "$WORK/folder_out/b.json" && problem="b.json lists couch, which the tags leave out"
  grep -q '"name": "remote control"' "$WORK/folder_out/b.json" || problem="$problem b.json lacks the tagged class 2;"
  grep -q '"name": "couch"' "$WORK/folder_out/a.json" || problem="$problem a.json (no tags) lacks couch;"
else
  problem="b.json missing"
fi
report "--class-tags restricts one image's classes" "$problem"

# Tagged names are matched trimmed and without case: " Cat " and "COUCH" give what "cat" and
# "couch" give (same prompt, same labels).
printf '{"%s": [" Cat ", "COUCH"]}\n' "$STEM" >"$WORK/tags_messy.json"
printf '{"%s": ["cat", "couch"]}\n' "$STEM" >"$WORK/tags_clean.json"
problem=""
for t in messy clean; do
  "$BIN" segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --class-tags "$WORK/tags_$t.json" --postprocess blur \
    --out "$WORK/tags_$t" >"$OUT" 2>"$ERR" </dev/null
  status=$?
  [ "$status" -eq 0 ] || problem="$problem tags_$t.json: exit status $status;"
done
if [ -z "$problem" ]; then
  grep -q '"name": "couch"' "$WORK/tags_messy/$STEM.json" || problem="$problem the prompt lacks the tagged COUCH;"
  grep -q '"name": "remote control"' "$WORK/tags_messy/$STEM.json" && problem="$problem the untagged remote control is prompted;"
  cmp -s "$WORK/tags_messy/$STEM.labels.png" "$WORK/tags_clean/$STEM.labels.png" || problem="$problem label PNGs differ;"
  diff <(stable_json "$WORK/tags_messy/$STEM.json") <(stable_json "$WORK/tags_clean/$STEM.json") >/dev/null ||
    problem="$problem JSON records differ;"
fi
report "--class-tags names with spaces and other case equal the clean names" "$problem"

# ---- the same folder in one batch: same labels as one image at a time -------------------------
"$BIN" segment "$folder" --classes "$CLASSES" "${TINY[@]}" --class-tags "$WORK/tags.json" \
  --postprocess blur --batch-size 3 --out "$WORK/batch_out" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 1 ]; then
  problem="exit status $status, expected 1 (one bad file)"
elif [ "$(grep -c '^error: ' "$ERR")" -ne 1 ]; then
  problem="expected exactly one error line (the bad file)"
else
  for f in a.labels.png b.labels.png; do
    cmp -s "$WORK/folder_out/$f" "$WORK/batch_out/$f" || problem="$problem $f differs from the unbatched run;"
  done
fi
report "folder with --batch-size 3 equals --batch-size 1 (exit $status)" "$problem"

# ---- the same folder with one worker and with two side by side: the same label PNGs ------------
problem=""
for workers in 1 2; do
  "$BIN" segment "$folder" --classes "$CLASSES" "${TINY[@]}" --class-tags "$WORK/tags.json" \
    --postprocess blur --workers "$workers" --out "$WORK/workers_$workers" >"$OUT" 2>"$ERR" </dev/null
  status=$?
  if [ "$status" -ne 1 ] || [ "$(grep -c '^error: ' "$ERR")" -ne 1 ]; then
    problem="$problem --workers $workers: exit status $status, expected 1 with one error line (the bad file);"
  fi
done
grep -q ', 2 side by side -> ' "$OUT" || problem="$problem --workers 2 does not say that images run side by side;"
for f in a.labels.png b.labels.png a.overlay.png b.overlay.png; do
  cmp -s "$WORK/workers_1/$f" "$WORK/workers_2/$f" || problem="$problem $f differs between 1 and 2 workers;"
done
report "folder with --workers 2 equals --workers 1" "$problem"

# ---- a rerun into the same --out keeps what an earlier run wrote the same way -----------------
# `segment_folder OUT [OPTIONS...]`: the folder above with its tags, as before, into OUT.
segment_folder() {
  local out=$1
  shift
  "$BIN" segment "$folder" --classes "$CLASSES" "${TINY[@]}" --class-tags "$WORK/tags.json" \
    --postprocess blur --out "$out" "$@" >"$OUT" 2>"$ERR" </dev/null
}
resumed=$WORK/resumed
segment_folder "$resumed"
cp "$resumed/a.json" "$WORK/a_first.json"
cp "$resumed/b.json" "$WORK/b_first.json"
segment_folder "$resumed"
status=$?
problem=""
if [ "$status" -ne 1 ] || [ "$(grep -c '^error: ' "$ERR")" -ne 1 ]; then
  problem="exit status $status, expected 1 with one error line (the bad file, tried again)"
elif ! grep -q "^kept 2 images that an earlier run segmented the same way in $resumed/ " "$OUT"; then
  problem="no 'kept 2 images ...' line"
elif ! grep -qE '^segmented 0 images, 1 failed, 2 kept from an earlier run, [0-9.]+ s$' "$OUT"; then
  problem="no 'segmented 0 images, 1 failed, 2 kept from an earlier run' summary"
elif grep -q '^\[' "$ERR"; then
  problem="a kept image was segmented again: $(grep '^\[' "$ERR" | head -n 1)"
elif ! cmp -s "$resumed/a.json" "$WORK/a_first.json" || ! cmp -s "$resumed/b.json" "$WORK/b_first.json"; then
  problem="a kept record was rewritten"
fi
report "rerun keeps the images segmented the same way (exit $status)" "$problem"

# Killed before b's record was written: b alone is segmented again, to the same labels.
rm "$resumed/b.json"
cp "$resumed/b.labels.png" "$WORK/b_first.labels.png"
segment_folder "$resumed"
problem=""
if ! grep -q '^\[[12]/2\] .*/b.PNG ' "$ERR" || grep -q '/a.png ' "$ERR"; then
  problem="expected b.PNG alone to be segmented again: $(grep '^\[' "$ERR" | tr '\n' '|')"
elif ! grep -qE '^segmented 1 images, 1 failed, 1 kept from an earlier run, ' "$OUT"; then
  problem="no 'segmented 1 images, 1 failed, 1 kept' summary"
elif [ ! -s "$resumed/b.json" ] || ! cmp -s "$resumed/b.labels.png" "$WORK/b_first.labels.png"; then
  problem="b's outputs differ from the first run's"
fi
report "rerun after an interruption segments only the unfinished image" "$problem"

# What makes an image's outputs differ brings it back: its bytes, a setting, --save-maps.
problem=""
cp images/coco_000000004016.png "$folder/a.png"
segment_folder "$resumed"
grep -q '^\[[12]/2\] .*/a.png ' "$ERR" && ! grep -q '/b.PNG ' "$ERR" || problem="$problem changed a.png not segmented alone;"
cp "$IMAGE" "$folder/a.png"
segment_folder "$resumed"
grep -q '^\[[12]/2\] .*/a.png ' "$ERR" || problem="$problem a.png restored: not segmented again;"
segment_folder "$resumed" --threshold 0.3
[ "$(grep -c '^\[' "$ERR")" -eq 2 ] || problem="$problem another threshold: not both images segmented again;"
grep -q '"mask_threshold": 0.3' "$resumed/a.json" || problem="$problem a.json does not record threshold 0.3;"
segment_folder "$resumed" --threshold 0.3 --save-maps
[ "$(grep -c '^\[' "$ERR")" -eq 2 ] || problem="$problem --save-maps: not both images segmented again;"
[ -s "$resumed/a.maps.safetensors" ] || problem="$problem --save-maps wrote no maps;"
segment_folder "$resumed" --threshold 0.3
grep -q '^kept 2 images ' "$OUT" || problem="$problem maps written earlier: a rerun without --save-maps did not keep the images;"
segment_folder "$resumed" --threshold 0.3 --restart
[ "$(grep -c '^\[' "$ERR")" -eq 2 ] || problem="$problem --restart: not both images segmented again;"
grep -q '^kept ' "$OUT" && problem="$problem --restart still kept images;"
report "a changed image, setting or --save-maps, and --restart, segment again" "$problem"

# ---- info: the model and what the CPU path runs on ----------------------------------------------
env -u OPENBLAS_THREAD_TIMEOUT "$BIN" info "$MODEL" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -q 'BlipForImageTextRetrieval' "$OUT"; then
  problem="no model type line"
elif ! grep -qE '^cpu +(AVX-512|AVX2|SSE2) vectors, BLAS (OpenBLAS [0-9.]+ \(.+ kernels.*\), from /.+|BLIS \(.+\), from /.+|unknown.*)' "$OUT"; then
  problem="no cpu line naming the vectors, the BLAS and its file"
elif grep -q 'BLAS OpenBLAS' "$OUT" && ! grep -q 'kernels, idle threads poll 2^4 cycles)' "$OUT"; then
  problem="the executable did not ask OpenBLAS's idle threads to sleep at once"
elif grep -q 'BLAS OpenBLAS' "$OUT" &&
  ! OPENBLAS_THREAD_TIMEOUT=12 "$BIN" info "$MODEL" 2>/dev/null | grep -q 'idle threads poll 2^12 cycles)'; then
  problem="OPENBLAS_THREAD_TIMEOUT given by the user was not kept"
fi
# With BLIS installed (libblis4-pthread), `info` names it when it provides the products.
blis=/usr/lib/x86_64-linux-gnu/blis-pthread/libblas.so.3
if [ -z "$problem" ] && [ -e "$blis" ] &&
  ! BLIS_NUM_THREADS=2 LD_PRELOAD="$blis" "$BIN" info "$MODEL" 2>/dev/null |
    grep -qE "BLAS BLIS \(.+, 2 threads\), from $blis"; then
  problem="info did not name BLIS, its threads and its file when BLIS was preloaded"
fi
report "info reports the model and the CPU's vectors and BLAS (exit $status)" "$problem"

# ---- bad input: exit status 1..127, exactly one stderr line "error: ..." -------------------------
bad_out=$WORK/bad_out
: >"$WORK/a_file"
printf '\n\n' >"$WORK/blank_classes.txt"
printf '{"x": ["giraffe"]}\n' >"$WORK/bad_tags.json"
expect_error "no classes" -- segment "$IMAGE" "${TINY[@]}" --out "$bad_out"
expect_error "classes file without names" -- segment "$IMAGE" --classes-file "$WORK/blank_classes.txt" "${TINY[@]}" --out "$bad_out"
expect_error "empty class name" -- segment "$IMAGE" --classes "cat,,couch" "${TINY[@]}" --out "$bad_out"
expect_error "trailing comma" -- segment "$IMAGE" --classes "cat, couch," "${TINY[@]}" --out "$bad_out"
expect_error "duplicate class name" -- segment "$IMAGE" --classes "cat, couch, Cat" "${TINY[@]}" --out "$bad_out"
expect_error "class that tokenizes to nothing" -- \
  segment "$IMAGE" --classes "cat, $(printf '\xe2\x80\x8b')" "${TINY[@]}" --out "$bad_out"
expect_error "layer above the model's" -- segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 64 --layer 4 --head 3 --out "$bad_out"
expect_error "layer 0" -- segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 64 --layer 0 --head 3 --out "$bad_out"
expect_error "head above the model's" -- segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 64 --layer 2 --head 5 --out "$bad_out"
expect_error "paper layer on the tiny model" -- segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 64 --out "$bad_out"
expect_error "threshold above 1" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --threshold 1.5 --out "$bad_out"
expect_error "negative blur" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --blur -0.1 --out "$bad_out"
expect_error "blur above 1" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --blur 2 --out "$bad_out"
expect_error "size not a multiple of the patch" -- segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 70 --layer 2 --head 3 --out "$bad_out"
expect_error "unknown postprocess" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --postprocess sharpen --out "$bad_out"
expect_error "unknown preset" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --preset fancy --out "$bad_out"
expect_error "unreadable image" -- segment "$WORK/no_such_image.png" --classes "$CLASSES" "${TINY[@]}" --out "$bad_out"
expect_error "text file as image" -- segment "$WORK/a_file" --classes "$CLASSES" "${TINY[@]}" --out "$bad_out"
expect_error "output folder under a file" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --out "$WORK/a_file/sub"
expect_error "class tags naming an unknown class" -- \
  segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --class-tags "$WORK/bad_tags.json" --out "$bad_out"
expect_error "unknown device" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --device gpu --out "$bad_out"
expect_error "fp16 on the CPU" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --dtype fp16 --out "$bad_out"
expect_error "unknown dtype" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --dtype int8 --out "$bad_out"
expect_error "batch size 0" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --batch-size 0 --out "$bad_out"
expect_error "no workers" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --workers 0 --out "$bad_out"
if [ -z "$(nvidia-smi -L 2>/dev/null)" ]; then
  expect_error "cuda without a GPU" -- segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --device cuda --out "$bad_out"
  expect_error "post-processing on cuda without a GPU" -- \
    segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --postprocess-device cuda --out "$bad_out"
fi
expect_error "unknown post-processing device" -- \
  segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --postprocess-device gpu --out "$bad_out"
expect_error "missing model" -- segment "$IMAGE" --classes "$CLASSES" --model "$WORK/no_model" --out "$bad_out"

finish

#!/usr/bin/env bash
# `pnp-ovss segment` and `pnp-ovss info` end to end with the tiny random-weight BridgeTower model
# (tests/data/bridgetower_itm: 2 cross-modal layers, 4 heads, patch 16): the outputs of one image
# (label PNG, overlay, JSON record, --save-maps), a bf16 batch of two images, and bad layer/head
# values (one "error: ..." line on stderr, non-zero exit).
#
# Usage: tests/test_bridgetower_cli.sh PATH/TO/pnp-ovss TEST_DATA_DIR
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PNP_OVSS_BINARY TEST_DATA_DIR" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$2
cd "$DATA" || exit 2
IMAGE=images/coco_000000039769.png
STEM=coco_000000039769
MODEL=bridgetower_itm
for need in "$BIN" "$MODEL/model.safetensors" "$MODEL/vocab.json" "$IMAGE"; do
  if [ ! -e "$need" ]; then
    echo "missing $need" >&2
    exit 2
  fi
done
TINY=(--model "$MODEL" --size 64 --layer 1 --head 3)
CLASSES="cat, couch, remote control"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_bridgetower_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/cli_test_lib.sh
source "$HERE/cli_test_lib.sh"

# ---- one image, every output ----------------------------------------------------------------
single=$WORK/single
"$BIN" segment "$IMAGE" --classes "$CLASSES" "${TINY[@]}" --out "$single" --save-maps >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -qE "^\[1/1\] $IMAGE [0-9]+\.[0-9] s$" "$ERR"; then
  problem="no progress line '[1/1] $IMAGE N.N s' on stderr"
elif ! grep -qE '^settings: preset=paper .*size=64 layer=1 head=3 ' "$OUT"; then
  problem="no 'settings: ...' line with the overrides on stdout"
elif ! grep -qE '^segmented 1 images, 0 failed, [0-9.]+ s$' "$OUT"; then
  problem="no summary line"
fi
report "segment with the BridgeTower model (exit $status)" "$problem"

problem=""
for f in "$STEM.labels.png" "$STEM.overlay.png" "$STEM.json" "$STEM.maps.safetensors" \
  "$STEM.maps/cat.iter0.gradcam.png" "$STEM.maps/remote_control.final.png" "$STEM.maps/dropped.iter3.png"; do
  [ -s "$single/$f" ] || problem="$problem missing $f;"
done
report "label map, overlay, record and maps exist" "$problem"

problem=""
record=$single/$STEM.json
if [ ! -s "$record" ]; then
  problem="no record"
else
  # The photo is 640 x 480 (tests/data/images/README.md); the label PNG has its size.
  grep -q '"width": 640' "$record" || problem="$problem width is not 640;"
  grep -q '"height": 480' "$record" || problem="$problem height is not 480;"
  for name in '"name": "cat"' '"name": "couch"' '"name": "remote control"' '"attention_layer_1based": 1'; do
    grep -q "$name" "$record" || problem="$problem no $name;"
  done
  # Layer 1 has a map for every class (the last layer's class tokens get no gradient), so more
  # than one label covers pixels.
  covering=$(grep -oE '"pixel_share": [0-9.e-]+' "$record" | grep -cvE ': 0(\.0)?$')
  [ "$covering" -ge 2 ] || problem="$problem only $covering label(s) cover pixels;"
  # PNG header: 8-byte signature, IHDR length and type, then width and height (big-endian).
  size=$(od -An -tx1 -j16 -N8 "$single/$STEM.labels.png" | tr -d ' \n')
  [ "$size" = "00000280000001e0" ] || problem="$problem label PNG is not 640 x 480 ($size);"
fi
report "record and label PNG have the image's size and the classes" "$problem"

# ---- two images in one bf16 batch ---------------------------------------------------------------
batch=$WORK/batch
"$BIN" segment "$IMAGE" images/coco_000000004016.png --classes "$CLASSES" "${TINY[@]}" --dtype bf16 \
  --batch-size 2 --out "$batch" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -qE '^segmented 2 images, 0 failed' "$OUT"; then
  problem="no summary line for 2 images"
else
  for stem in "$STEM" coco_000000004016; do
    [ -s "$batch/$stem.labels.png" ] || problem="$problem missing $stem.labels.png;"
    grep -q '"device": "cpu/bf16"' "$batch/$stem.json" 2>/dev/null ||
      problem="$problem $stem.json does not say cpu/bf16;"
  done
fi
report "BridgeTower segments a bf16 batch of two images (exit $status)" "$problem"

# ---- info -------------------------------------------------------------------------------------
"$BIN" info "$MODEL" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -q 'BridgeTowerForImageAndTextRetrieval' "$OUT"; then
  problem="no model type line"
elif ! grep -qE 'cross-modal +2 layers' "$OUT"; then
  problem="no cross-modal line with 2 layers"
fi
report "info reports the BridgeTower model (exit $status)" "$problem"

# ---- bad input --------------------------------------------------------------------------------
bad_out=$WORK/bad_out
expect_error "layer above the model's 2 cross-modal layers" -- \
  segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 64 --layer 3 --head 3 --out "$bad_out"
expect_error "head above the model's 4" -- \
  segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 64 --layer 2 --head 5 --out "$bad_out"
expect_error "size not a multiple of the patch" -- \
  segment "$IMAGE" --classes "$CLASSES" --model "$MODEL" --size 70 --layer 2 --head 3 --out "$bad_out"
expect_error "special token in a class name" -- \
  segment "$IMAGE" --classes "cat, a </s> b" "${TINY[@]}" --out "$bad_out"

finish

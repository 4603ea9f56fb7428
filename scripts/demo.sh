#!/usr/bin/env bash
# Sets up, builds and segments the bundled photo into "cat, couch, remote control". Uses the
# real Salesforce/blip-itm-large-flickr (or MODEL=DIR or hub id), downloaded once into the
# Hugging Face cache; without network access and without it in the cache, the tiny
# random-weight model of the test data, whose maps mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh pnp-ovss  # the command line only; scripts/test.sh builds the rest
model="${MODEL:-Salesforce/blip-itm-large-flickr}"
options=()
echo "demo: loading $model (the first time, this downloads about 1.9 GB into the Hugging Face cache)"
# Progress and errors of the download go to the terminal.
if ! build/pnp-ovss info "$model" >/dev/null; then
  echo "demo: $model is not available (no network access, and not in the Hugging Face cache);"
  echo "demo: using the tiny random-weight test model instead: its segmentation is meaningless"
  echo "demo: (see README, 'Models and the cache', to get the real one)"
  model=tests/data/blip_itm
  # The tiny model takes 64-pixel inputs and has 3 text layers of 4 heads.
  options=(--size 64 --layer 2 --head 3)
fi
out=demo_out
build/pnp-ovss segment tests/data/images/coco_000000039769.png --model "$model" "${options[@]}" \
  --classes "cat, couch, remote control" --out "$out"
echo "demo: outputs in $out/: coco_000000039769.overlay.png (the photo with the classes and a legend),"
echo "demo: coco_000000039769.labels.png (one byte per pixel: 0 background, 1 cat, 2 couch, 3 remote control)"
echo "demo: and coco_000000039769.json (classes, pixel shares, settings, timings)"

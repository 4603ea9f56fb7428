#!/usr/bin/env bash
# Sets up, builds and runs pnp-ovss on the bundled photo. Uses the real
# Salesforce/blip-itm-large-flickr when it is in the local Hugging Face cache (or MODEL=DIR),
# otherwise the tiny random-weight model of the test data, whose scores mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
model="${MODEL:-Salesforce/blip-itm-large-flickr}"
if ! build/pnp-ovss info "$model" >/dev/null 2>&1; then
  echo "demo: $model is not available locally; using the tiny random-weight test model instead"
  echo "demo: (its scores are meaningless; see README, 'Models', to get the real one)"
  model=tests/data/blip_itm
fi
build/pnp-ovss match tests/data/images/coco_000000039769.png --model "$model" \
  --text "two cats lying on a pink couch" --text "a plate of food on a table"

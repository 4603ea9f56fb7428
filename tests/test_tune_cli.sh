#!/usr/bin/env bash
# `pnp-ovss tune` end to end on the tiny random-weight fixture models (tests/data/blip_itm:
# input 64, text layers 1..3, heads 1..4; tests/data/clip as the scorer) and the synthetic
# tuning set tests/data/tune: random search with both stages, resuming from the journal,
# the exhaustive grid, `segment --settings` with the written settings, and bad input (one
# "error: ..." line on stderr, non-zero exit). Also --dataset (tests/data/tune/folder).
#
# Usage: tests/test_tune_cli.sh PATH/TO/pnp-ovss TEST_DATA_DIR
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PNP_OVSS_BINARY TEST_DATA_DIR" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$2
cd "$DATA" || exit 2
LIST=tune/list.tsv
for need in "$BIN" blip_itm/model.safetensors clip/model.safetensors "$LIST" tune/square.png; do
  if [ ! -e "$need" ]; then
    echo "missing $need" >&2
    exit 2
  fi
done
MODELS=(--model blip_itm --scorer clip --size 64)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_tune_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/cli_test_lib.sh
source "$HERE/cli_test_lib.sh"

lines() { grep -c "$1" "$2" 2>/dev/null || true; }

# ---- random search, both stages ----------------------------------------------------------------
rnd=$WORK/random
"$BIN" tune "$LIST" "${MODELS[@]}" --trials 5 --blur-trials 2 --seed 1 --out "$rnd" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  for f in tune.json best_settings.json reward_layer_head.png trials.jsonl; do
    [ -s "$rnd/$f" ] || problem="$problem missing $f;"
  done
  [ "$(lines '"kind":"trial"' "$rnd/trials.jsonl")" -eq 7 ] || problem="$problem journal has not 5 + 2 trials;"
  [ "$(lines '"kind":"run"' "$rnd/trials.jsonl")" -eq 1 ] || problem="$problem journal has no run line;"
  [ "$(lines '"resumed": false' "$rnd/tune.json")" -eq 7 ] || problem="$problem tune.json has not 7 fresh trials;"
  [ "$(lines '^\[layer_head_threshold [1-5]/5\] layer [1-3] head [1-4] ' "$ERR")" -eq 5 ] ||
    problem="$problem no 5 stage-1 progress lines;"
  [ "$(lines '^\[blur [12]/2\] .*final masks' "$ERR")" -eq 2 ] || problem="$problem no 2 blur progress lines;"
  grep -q '^note: layers 1..3 instead of the paper.s 1..12' "$OUT" || problem="$problem no note on the clipped layers;"
  grep -q '"max_reward": 7' "$rnd/tune.json" || problem="$problem max reward is not 2 + 2 + 3 = 7;"
  grep -q '"best_settings": {' "$rnd/tune.json" || problem="$problem no best_settings in tune.json;"
  grep -q '"name": "cat"' "$rnd/tune.json" || problem="$problem no per-class count for cat;"
  head -c 8 "$rnd/reward_layer_head.png" | od -An -c | grep -q 'P   N   G' || problem="$problem plot is not a PNG;"
fi
report "random search writes every output (exit $status)" "$problem"

# Each best entry of tune.json lists the trials of its stage that reached the same reward
# ("tied_trials", possibly empty) and, when there are any, the rule that chose among them.
# check_ties NAME DIR ENTRIES: tune.json in DIR has ENTRIES best entries.
check_ties() {
  local tune=$2/tune.json problem=""
  local lists empty rules
  lists=$(lines '"tied_trials": \[' "$tune")
  empty=$(lines '"tied_trials": \[\]' "$tune")
  rules=$(lines '"tie_rule": "equal rewards: the first trial in visiting order is kept"' "$tune")
  if [ "$lists" -ne "$3" ]; then
    problem="$lists tied_trials lists, expected one per best entry ($3)"
  elif [ "$rules" -ne $((lists - empty)) ]; then
    problem="$rules tie rules for $((lists - empty)) non-empty tied_trials lists"
  elif grep -A1 '"tied_trials": \[\]' "$tune" | grep -q '"tie_rule"'; then
    problem="a tie rule after an empty tied_trials list"
  fi
  report "$1" "$problem"
}
check_ties "tune.json best entries list their tied trials" "$rnd" 2

# best_settings.json names the model it was tuned for.
problem=""
tr -d ' \n' <"$rnd/best_settings.json" | grep -q '"tuned_for":{"model":"blip_itm"}' ||
  problem="no \"tuned_for\": {\"model\": \"blip_itm\"} in best_settings.json"
report "best_settings.json says which model it was tuned for" "$problem"

# ---- the same command again resumes: nothing recomputed, same best ------------------------------
cp "$rnd/best_settings.json" "$WORK/first_best.json"
"$BIN" tune "$LIST" "${MODELS[@]}" --trials 5 --blur-trials 2 --seed 1 --out "$rnd" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif [ "$(lines '(journal)' "$ERR")" -ne 7 ]; then
  problem="expected 7 trials read back from the journal"
elif [ "$(lines '"kind":"trial"' "$rnd/trials.jsonl")" -ne 7 ]; then
  problem="the journal grew"
elif ! cmp -s "$rnd/best_settings.json" "$WORK/first_best.json"; then
  problem="another best setting after resuming"
fi
report "rerun resumes from the journal (exit $status)" "$problem"

# ---- a larger budget extends the journal ----------------------------------------------------------
"$BIN" tune "$LIST" "${MODELS[@]}" --trials 8 --no-blur-stage --seed 1 --out "$rnd" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif [ "$(lines '(journal)' "$ERR")" -ne 5 ] || [ "$(lines '"kind":"trial"' "$rnd/trials.jsonl")" -ne 10 ]; then
  problem="expected 5 trials resumed and 3 new ones appended"
fi
report "larger --trials resumes the first 5 (exit $status)" "$problem"

# ---- exhaustive layer x head grid ------------------------------------------------------------------
grid=$WORK/grid
"$BIN" tune "$LIST" "${MODELS[@]}" --exhaustive --blur-trials 1 --out "$grid" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  [ "$(lines '"kind":"grid_image"' "$grid/trials.jsonl")" -eq 3 ] || problem="$problem journal has not 3 grid images;"
  # 3 layers x 4 heads x 5 thresholds, then one blur trial.
  [ "$(lines '"resumed": false' "$grid/tune.json")" -eq 61 ] || problem="$problem tune.json has not 60 + 1 trials;"
  grep -q '"exhaustive_grid_seconds": ' "$grid/tune.json" || problem="$problem no grid timing;"
  grep -q '^exhaustive grid: ' "$OUT" || problem="$problem no grid timing line;"
  [ -s "$grid/reward_layer_head.png" ] || problem="$problem no plot;"
fi
report "exhaustive grid (exit $status)" "$problem"
check_ties "exhaustive tune.json best entries list their tied trials" "$grid" 2

# ---- images side by side: the same rewards and best settings as one at a time ---------------------
problem=""
for workers in 1 2; do
  "$BIN" tune "$LIST" "${MODELS[@]}" --exhaustive --blur-trials 1 --workers "$workers" --out "$WORK/workers_$workers" \
    >"$OUT" 2>"$ERR" </dev/null || problem="$problem --workers $workers: exit status $?;"
done
grep -q '^tuning .* on 3 images (2 side by side) with ' "$OUT" || problem="$problem --workers 2 does not say so;"
rewards() { grep -E '"(reward|max_reward|wins|images)": ' "$1/tune.json"; }
[ -n "$(rewards "$WORK/workers_1")" ] || problem="$problem no rewards in tune.json;"
[ "$(rewards "$WORK/workers_1")" = "$(rewards "$WORK/workers_2")" ] || problem="$problem the rewards differ;"
cmp -s "$WORK/workers_1/best_settings.json" "$WORK/workers_2/best_settings.json" ||
  problem="$problem best_settings.json differs;"
report "--workers 2 gives the rewards and best settings of --workers 1" "$problem"

# ---- image-level classes from a dataset's label maps ---------------------------------------------
ds=$WORK/dataset
"$BIN" tune --dataset folder --data-root tune/folder "${MODELS[@]}" --trials 2 --no-blur-stage --out "$ds" \
  >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  # field.png holds sky and grass, square.png the square, plain.png only background (skipped).
  tr -d ' \n' <"$ds/tune.json" >"$WORK/flat.json"
  grep -q '"images":\[{"classes":\["sky","grass"\],"path":"tune/folder/images/field.png"},{"classes":\["square"\],"path":"tune/folder/images/square.png"}\]' \
    "$WORK/flat.json" || problem="image-level classes are not [sky, grass] and [square] for the two labelled images"
  grep -q '"max_reward":3' "$WORK/flat.json" || problem="$problem max reward is not 3;"
fi
report "--dataset folder derives the classes from the labels (exit $status)" "$problem"

# ---- segment with the tuned settings ---------------------------------------------------------------
layer=$(grep -o '"attention_layer_1based": [0-9]*' "$rnd/best_settings.json" | grep -o '[0-9]*$')
head=$(grep -o '"attention_head_1based": [0-9]*' "$rnd/best_settings.json" | grep -o '[0-9]*$')
"$BIN" segment tune/square.png --classes "red square, blue background" --model blip_itm \
  --settings "$rnd/best_settings.json" --out "$WORK/seg" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -qE "^settings: preset=paper .*size=64 layer=$layer head=$head " "$OUT"; then
  problem="settings line does not show the tuned size 64, layer $layer, head $head"
fi
report "segment --settings uses the tuned settings (exit $status)" "$problem"

"$BIN" segment tune/square.png --classes "red square, blue background" --model blip_itm \
  --settings "$rnd/best_settings.json" --layer 1 --head 2 --out "$WORK/seg2" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -qE "^settings: preset=paper .*size=64 layer=1 head=2 " "$OUT"; then
  problem="--layer 1 --head 2 did not override the file"
fi
report "command-line options override --settings (exit $status)" "$problem"

# The tuned settings with another model directory (a copy of the same checkpoint): a note that
# they were tuned for another model, and the run goes on; with the same model, no note.
cp -r blip_itm "$WORK/blip_copy"
"$BIN" segment tune/square.png --classes "red square, blue background" --model "$WORK/blip_copy" \
  --settings "$rnd/best_settings.json" --out "$WORK/seg_copy" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -q "^note: settings file '$rnd/best_settings.json' was tuned for the model blip_itm, not for $WORK/blip_copy" "$OUT"; then
  problem="no 'note: settings file ... was tuned for the model blip_itm, not for $WORK/blip_copy' line"
elif [ ! -s "$WORK/seg_copy/square.labels.png" ]; then
  problem="no label PNG"
fi
report "segment --settings tuned for another model notes it and runs (exit $status)" "$problem"
"$BIN" segment tune/square.png --classes "red square, blue background" --model blip_itm \
  --settings "$rnd/best_settings.json" --out "$WORK/seg_same" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif grep -q "was tuned for the model" "$OUT" "$ERR"; then
  problem="a 'tuned for the model' note for the model it was tuned for"
fi
report "segment --settings tuned for the same model gives no note (exit $status)" "$problem"

# ---- bad input ---------------------------------------------------------------------------------------
bad_out=$WORK/bad_out
printf 'square.png cat\n' >"$WORK/no_tab.tsv"
printf 'missing.png\tcat\n' >"$WORK/missing_image.tsv"
printf '{"mask_treshold": 0.2}\n' >"$WORK/typo.json"
expect_error "neither LIST nor --dataset" -- tune "${MODELS[@]}" --out "$bad_out"
expect_error "both LIST and --dataset" -- tune "$LIST" --dataset folder --data-root tune/folder "${MODELS[@]}" --out "$bad_out"
expect_error "--dataset without --data-root" -- tune --dataset folder "${MODELS[@]}" --out "$bad_out"
expect_error "unknown dataset" -- tune --dataset imagenet --data-root tune/folder "${MODELS[@]}" --out "$bad_out"
expect_error "bad --thresholds" -- tune "$LIST" "${MODELS[@]}" --thresholds 0.1,x --out "$bad_out"
expect_error "list without a tab" -- tune "$WORK/no_tab.tsv" "${MODELS[@]}" --out "$bad_out"
expect_error "missing list" -- tune "$WORK/none.tsv" "${MODELS[@]}" --out "$bad_out"
expect_error "missing image" -- tune "$WORK/missing_image.tsv" "${MODELS[@]}" --out "$bad_out/m"
expect_error "unknown mask kind" -- tune "$LIST" "${MODELS[@]}" --masks crf --out "$bad_out"
expect_error "exhaustive on dropout masks" -- tune "$LIST" "${MODELS[@]}" --exhaustive --masks dropout --out "$bad_out/e"
expect_error "unknown empty image" -- tune "$LIST" "${MODELS[@]}" --empty white --out "$bad_out"
expect_error "zero trials" -- tune "$LIST" "${MODELS[@]}" --trials 0 --out "$bad_out"
expect_error "journal of another run" -- tune "$LIST" "${MODELS[@]}" --empty mean --trials 1 --out "$rnd"
# The same run but for one field of the run description: the refusal names the field and both values.
expect_error "journal of a run with another --empty" -- \
  tune "$LIST" "${MODELS[@]}" --trials 5 --blur-trials 2 --seed 1 --empty mean --out "$rnd"
grep -q 'empty_image: "black" there, "mean" now' "$ERR" ||
  report "another --empty: the refusal names empty_image" "no 'empty_image: \"black\" there, \"mean\" now' in the message"
expect_error "journal of a run with another --logit-scale" -- \
  tune "$LIST" "${MODELS[@]}" --trials 5 --blur-trials 2 --seed 1 --logit-scale 50 --out "$rnd"
grep -qE 'logit_scale: [0-9.e+-]+ there, 50(\.0)? now' "$ERR" ||
  report "another --logit-scale: the refusal names logit_scale" "no 'logit_scale: X there, 50 now' in the message"
expect_error "journal of an fp32 run resumed in bf16" -- \
  tune "$LIST" "${MODELS[@]}" --trials 5 --blur-trials 2 --seed 1 --dtype bf16 --out "$rnd"
expect_error "fp16 on the CPU" -- tune "$LIST" "${MODELS[@]}" --dtype fp16 --out "$bad_out/f"
expect_error "scorer that is not CLIP" -- tune "$LIST" --model blip_itm --scorer blip_itm --size 64 --out "$bad_out/s"
expect_error "size not a multiple of the patch" -- tune "$LIST" --model blip_itm --scorer clip --size 70 --out "$bad_out"
expect_error "settings file with a typo" -- tune "$LIST" "${MODELS[@]}" --settings "$WORK/typo.json" --out "$bad_out"
expect_error "both --preset and --settings" -- \
  tune "$LIST" "${MODELS[@]}" --settings "$rnd/best_settings.json" --preset paper --out "$bad_out"
expect_error "segment --settings with a typo" -- \
  segment tune/square.png --classes cat --model blip_itm --settings "$WORK/typo.json" --out "$bad_out/seg"
expect_error "segment --settings missing" -- \
  segment tune/square.png --classes cat --model blip_itm --settings "$WORK/none.json" --out "$bad_out/seg"

finish

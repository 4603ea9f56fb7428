#!/usr/bin/env bash
# `pnp-ovss eval` end to end on synthetic trees of every dataset layout (written by
# pnpovss_eval_make_trees; its source lists the label values and predictions):
#   --predictions on each layout against metrics computed by hand from those values, under
#   both protocols; the tiny random-weight model (tests/data/blip_itm) on a folder dataset
#   with every output; a run killed mid-way and resumed equals an uninterrupted one; shards
#   merged equal a single run; `mpirun -n 2` equals a single run (skipped without MPI); bad
#   input fails with one clear line, and a single bad image is reported while the run goes on.
#
# Usage: tests/test_eval_cli.sh PATH/TO/pnp-ovss PATH/TO/pnpovss_eval_make_trees TEST_DATA_DIR [MPIRUN]
set -u

if [ $# -lt 3 ]; then
  echo "usage: $0 PNP_OVSS_BINARY MAKE_TREES_BINARY TEST_DATA_DIR [MPIRUN]" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
MAKE_TREES=$2
DATA=$(cd "$3" && pwd)
MPIRUN=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=$DATA/blip_itm
TINY=(--model "$MODEL" --size 64 --layer 2 --head 3 --postprocess blur)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_eval_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/cli_test_lib.sh
source "$HERE/cli_test_lib.sh"

TREES=$WORK/trees
"$MAKE_TREES" "$TREES" || { echo "cannot write the synthetic trees" >&2; exit 2; }

# json_number FILE KEY: the first top-level-looking "KEY": number in FILE.
json_number() {
  grep -m1 -E "^  \"$2\": " "$1" | sed -E 's/.*: ([-0-9.e+]+|null),?$/\1/'
}

# check_metrics NAME DIR mIoU mAcc aAcc
check_metrics() {
  local name=$1 dir=$2 problem=""
  if [ ! -s "$dir/metrics.json" ]; then
    problem="no metrics.json"
  else
    local got
    got="$(json_number "$dir/metrics.json" mIoU) $(json_number "$dir/metrics.json" mAcc) $(json_number "$dir/metrics.json" aAcc)"
    [ "$got" = "$3 $4 $5" ] || problem="mIoU mAcc aAcc = $got, expected $3 $4 $5"
    grep -q '"per_class": \[' "$dir/metrics.json" || problem="$problem no per_class;"
    [ -s "$dir/per_class.md" ] && [ -s "$dir/per_class.csv" ] || problem="$problem no per-class tables;"
  fi
  report "$name" "$problem"
}

# score DATASET PROTOCOL OUT: eval --predictions on a tree.
score() {
  "$BIN" eval --dataset "$1" --data-root "$TREES/$1" --predictions "$TREES/$1_pred" --protocol "$2" \
    --out "$3" >"$OUT" 2>"$ERR" </dev/null
}

# ---- metrics by hand, every layout -------------------------------------------------------------
# voc20 mmseg: classes 0, 1, 14, 19 each IoU 0.5; Acc 0.5, 1, 0.5, 1; aAcc 7/11.
score voc20 mmseg "$WORK/voc20_mmseg"
check_metrics "voc20 mmseg (exit $?)" "$WORK/voc20_mmseg" 50.0 75.0 63.64
# voc20 pnp-ovss: 21 classes, void -> background; IoU of labelled classes 0, 3/8, 1/2, 1/2, 1/3.
score voc20 pnp-ovss "$WORK/voc20_pnp"
check_metrics "voc20 pnp-ovss (exit $?)" "$WORK/voc20_pnp" 34.17 60.0 43.75
score context59 mmseg "$WORK/context59"
check_metrics "context59 mmseg (exit $?)" "$WORK/context59" 62.5 75.0 71.43
# coco_object: background (0) is a scored class.
score coco_object mmseg "$WORK/coco_object"
check_metrics "coco_object mmseg (exit $?)" "$WORK/coco_object" 47.22 61.11 57.14
# coco_stuff171: class 5, predicted but absent, has IoU 0 and counts in the mean.
score coco_stuff171 mmseg "$WORK/coco_stuff171"
check_metrics "coco_stuff171 mmseg (exit $?)" "$WORK/coco_stuff171" 60.0 75.0 71.43
score ade150 mmseg "$WORK/ade150"
check_metrics "ade150 mmseg (exit $?)" "$WORK/ade150" 61.11 66.67 66.67
score folder mmseg "$WORK/folder"
check_metrics "folder mmseg (exit $?)" "$WORK/folder" 50.0 66.67 66.67

problem=""
rows=$(($(wc -l <"$WORK/ade150/per_class.csv") - 1))
[ "$rows" -eq 150 ] || problem="ade150 table has $rows rows"
rows=$(($(wc -l <"$WORK/coco_object/per_class.csv") - 1))
[ "$rows" -eq 81 ] || problem="$problem coco_object table has $rows rows;"
rows=$(($(wc -l <"$WORK/voc20_pnp/per_class.csv") - 1))
[ "$rows" -eq 21 ] || problem="$problem voc20 pnp-ovss table has $rows rows;"
grep -q '^0,background,' "$WORK/coco_object/per_class.csv" || problem="$problem coco_object class 0 is not background;"
grep -q '^15,potted plant,' "$WORK/voc20_mmseg/per_class.csv" || problem="$problem voc20 class 15 is not potted plant;"
report "class lists in the tables" "$problem"

# ---- the model, end to end ---------------------------------------------------------------------
single=$WORK/model_single
"$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" --workers 1 --out "$single" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  for f in run.json metrics.json per_class.md per_class.csv images/m0.json pred/m29.png examples/m0.png examples/m1.png examples/m11.png; do
    [ -s "$single/$f" ] || problem="$problem missing $f;"
  done
  pictures=$(find "$single/examples" -name '*.png' | wc -l)
  [ "$pictures" -eq 4 ] || problem="$problem $pictures example pictures, expected 4;"
  grep -q '"settings": {' "$single/metrics.json" || problem="$problem no settings in metrics.json;"
  grep -q '"images_per_second": ' "$single/metrics.json" || problem="$problem no timing;"
  grep -q '"model": ' "$single/metrics.json" || problem="$problem no model;"
  grep -qE "^eval: 30/30 images" "$ERR" || problem="$problem no plain progress line on a non-terminal;"
  leftovers=$(find "$single" -name '*.tmp*' | head -n 3)
  [ -z "$leftovers" ] || problem="$problem temporary files left: $leftovers;"
fi
report "model run writes every output (exit $status)" "$problem"

# Its predictions, scored as --predictions, give the same per-class table.
"$BIN" eval --dataset folder --data-root "$TREES/model" --predictions "$single/pred" --out "$WORK/rescored" \
  >"$OUT" 2>"$ERR" </dev/null
problem=""
cmp -s "$single/per_class.csv" "$WORK/rescored/per_class.csv" || problem="per_class.csv differs"
report "model predictions rescored equal the run" "$problem"

# --class-tags names are matched trimmed and without case: " Cat " and "COUCH" score exactly what
# "cat" and "couch" score. The tags restrict m0 and m1 (the model tree's classes are cat, couch,
# remote control), so their predictions differ from an untagged run's.
printf '{"m0": [" Cat ", "COUCH"], "m1": ["REMOTE control "]}\n' >"$WORK/tags_messy.json"
printf '{"m0": ["cat", "couch"], "m1": ["remote control"]}\n' >"$WORK/tags_clean.json"
problem=""
for t in messy clean none; do
  tag_args=()
  [ "$t" = none ] || tag_args=(--class-tags "$WORK/tags_$t.json")
  "$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" --limit 3 "${tag_args[@]}" \
    --out "$WORK/tags_$t" >"$OUT" 2>"$ERR" </dev/null
  status=$?
  [ "$status" -eq 0 ] || problem="$problem tags $t: exit status $status;"
done
if [ -z "$problem" ]; then
  cmp -s "$WORK/tags_messy/per_class.csv" "$WORK/tags_clean/per_class.csv" || problem="per_class.csv differs;"
  cmp -s "$WORK/tags_messy/pred/m0.png" "$WORK/tags_clean/pred/m0.png" || problem="$problem pred/m0.png differs;"
  cmp -s "$WORK/tags_messy/pred/m0.png" "$WORK/tags_none/pred/m0.png" &&
    cmp -s "$WORK/tags_messy/pred/m1.png" "$WORK/tags_none/pred/m1.png" && problem="$problem the tags changed nothing;"
fi
report "eval --class-tags names with spaces and other case equal the clean names" "$problem"

# The official preset on ADE: fused names and the released script's unnormalised bilinear input.
"$BIN" eval --dataset ade150 --data-root "$TREES/ade150" "${TINY[@]}" --preset official --protocol pnp-ovss \
  --out "$WORK/ade_official" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  grep -q '"ade_unnormalized_input": true' "$WORK/ade_official/metrics.json" || problem="ADE input quirk not on;"
  grep -q '"prompt_class_names": "fused"' "$WORK/ade_official/metrics.json" || problem="$problem names not fused;"
  grep -q '"background_dataset": "ade"' "$WORK/ade_official/metrics.json" || problem="$problem no ADE background rule;"
  grep -q '"ade_unnormalized_input": false' "$single/metrics.json" || problem="$problem quirk on outside ADE;"
fi
report "official preset on ade150 carries the dataset's rules (exit $status)" "$problem"

# ---- resume after a kill -----------------------------------------------------------------------
killed=$WORK/model_killed
"$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" --out "$killed" >"$WORK/kill.out" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 600); do
  n=$(find "$killed/images" -name '*.json' 2>/dev/null | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.02
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
before=$(find "$killed/images" -name '*.json' | wc -l)
"$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" --out "$killed" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$before" -ge 30 ]; then
  problem="the run finished before it could be killed ($before records)"
elif [ "$status" -ne 0 ]; then
  problem="resumed run: exit status $status"
elif ! grep -q "\"resumed\": $before" "$killed/metrics.json"; then
  problem="metrics.json does not say $before images were resumed"
elif ! cmp -s "$single/per_class.csv" "$killed/per_class.csv"; then
  problem="per_class.csv differs from the uninterrupted run"
elif [ "$(json_number "$single/metrics.json" mIoU)" != "$(json_number "$killed/metrics.json" mIoU)" ]; then
  problem="mIoU differs"
fi
report "killed after $before of 30 images and resumed: same metrics" "$problem"

expect_error "resume with other settings is refused" -- \
  eval --dataset folder --data-root "$TREES/model" --model "$MODEL" --size 64 --layer 1 --head 3 --postprocess blur --out "$killed"
grep -q "layer" "$ERR" || report "refusal names the setting" "no 'layer' in the message"

# ---- resume over damaged records and missing predictions ------------------------------------
# metrics.json without what changes from run to run (timing) or with resuming (the image counts).
stable_metrics() {
  sed -e '/^  "timing": {/,/^  }/d' -e '/^  "images": {/,/^  }/d' "$1"
}
# A copy of the finished run with m3's record cut to half its bytes (a write cut short), m5's
# replaced by {} and m7's prediction deleted: the rerun computes those three again, says so for
# the damaged records, and ends with the uninterrupted run's metrics and predictions.
damaged=$WORK/model_damaged
cp -r "$single" "$damaged"
rm -f "$damaged/metrics.json" "$damaged/per_class.md" "$damaged/per_class.csv"
m3_size=$(wc -c <"$damaged/images/m3.json")
head -c $((m3_size / 2)) "$single/images/m3.json" >"$damaged/images/m3.json"
printf '{}' >"$damaged/images/m5.json"
rm "$damaged/pred/m7.png"
"$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" --workers 1 --out "$damaged" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  for stem in m3 m5; do
    grep -q "^note: the record of image '$stem' was damaged " "$OUT" || problem="$problem no damage note for $stem;"
  done
  [ "$(grep -c '^note: the record of image ' "$OUT")" -eq 2 ] || problem="$problem not exactly 2 damage notes;"
  grep -q "^resumed 27 images that an earlier run finished in $damaged/ " "$OUT" ||
    problem="$problem no 'resumed 27 images that an earlier run finished in ...' line;"
  grep -q '"resumed": 27' "$damaged/metrics.json" || problem="$problem metrics.json does not say 27 resumed;"
  grep -q '"computed_now": 3' "$damaged/metrics.json" || problem="$problem metrics.json does not say 3 computed;"
  diff <(stable_metrics "$single/metrics.json") <(stable_metrics "$damaged/metrics.json") >/dev/null ||
    problem="$problem metrics.json differs from the uninterrupted run's;"
  cmp -s "$single/per_class.csv" "$damaged/per_class.csv" || problem="$problem per_class.csv differs;"
  [ -s "$damaged/pred/m7.png" ] || problem="$problem pred/m7.png not written again;"
  cmp -s "$single/pred/m7.png" "$damaged/pred/m7.png" || problem="$problem pred/m7.png differs;"
  for stem in m3 m5; do
    cmp -s "$single/images/$stem.json" "$damaged/images/$stem.json" ||
      diff <(sed 's/"seconds":[0-9.e+-]*,//' "$single/images/$stem.json") \
        <(sed 's/"seconds":[0-9.e+-]*,//' "$damaged/images/$stem.json") >/dev/null ||
      problem="$problem images/$stem.json differs from the first run's;"
  done
fi
report "damaged records and a deleted prediction are computed again (exit $status)" "$problem"

# --restart computes everything again and leaves files that are not eval's own alone.
printf 'my notes\n' >"$damaged/notes.txt"
mkdir -p "$damaged/mine"
printf 'keep\n' >"$damaged/mine/keep.txt"
"$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" --workers 1 --restart --out "$damaged" \
  >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
else
  grep -q '"resumed": 0' "$damaged/metrics.json" || problem="$problem metrics.json does not say 0 resumed;"
  grep -q '"computed_now": 30' "$damaged/metrics.json" || problem="$problem metrics.json does not say 30 computed;"
  grep -q '^resumed ' "$OUT" && problem="$problem --restart resumed images;"
  [ "$(cat "$damaged/notes.txt" 2>/dev/null)" = "my notes" ] || problem="$problem notes.txt was touched;"
  [ "$(cat "$damaged/mine/keep.txt" 2>/dev/null)" = "keep" ] || problem="$problem mine/keep.txt was touched;"
  cmp -s "$single/per_class.csv" "$damaged/per_class.csv" || problem="$problem per_class.csv differs;"
fi
report "eval --restart recomputes every image and keeps other files (exit $status)" "$problem"

# ---- batches and workers: the same scores as one image at a time ------------------------------
# Runs eval with the extra options into $WORK/NAME and reports whether it scored and predicted
# exactly what the single run did.
expect_same_as_single() {
  local name=$1 what=$2
  shift 2
  "$BIN" eval --dataset folder --data-root "$TREES/model" "${TINY[@]}" "$@" --out "$WORK/$name" \
    >"$OUT" 2>"$ERR" </dev/null
  local status=$? problem=""
  if [ "$status" -ne 0 ]; then
    problem="exit status $status"
  elif ! cmp -s "$single/per_class.csv" "$WORK/$name/per_class.csv"; then
    problem="per_class.csv differs from the run of one image at a time"
  else
    for f in "$single"/pred/*.png; do
      cmp -s "$f" "$WORK/$name/pred/$(basename "$f")" || { problem="$problem $(basename "$f") differs;"; break; }
    done
  fi
  report "$what gives the predictions of one image at a time (exit $status)" "$problem"
}
expect_same_as_single batched "--batch-size 4" --batch-size 4
expect_same_as_single workers "--workers 3" --workers 3

# ---- shards and merge --------------------------------------------------------------------------
for k in 0 1 2; do
  "$BIN" eval --dataset folder --data-root "$TREES/model" --predictions "$single/pred" --shard "$k/3" \
    --out "$WORK/shard$k" >"$OUT" 2>"$ERR" </dev/null || report "shard $k/3" "exit status $?"
done
"$BIN" eval --merge "$WORK/shard0" "$WORK/shard1" "$WORK/shard2" --out "$WORK/merged" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! cmp -s "$single/per_class.csv" "$WORK/merged/per_class.csv"; then
  problem="merged per_class.csv differs from the single run"
elif [ "$(json_number "$single/metrics.json" aAcc)" != "$(json_number "$WORK/merged/metrics.json" aAcc)" ]; then
  problem="aAcc differs"
fi
report "3 shards merged equal the single run (exit $status)" "$problem"
expect_error "merge with a shard missing" -- eval --merge "$WORK/shard0" "$WORK/shard2" --out "$WORK/merged2"
expect_error "merge of runs of different datasets" -- eval --merge "$WORK/shard0" "$WORK/voc20_mmseg" --out "$WORK/merged3"

# ---- MPI ---------------------------------------------------------------------------------------
if [ -n "$MPIRUN" ]; then
  mpi_flags=()
  [ "$(id -u)" -eq 0 ] && mpi_flags+=(--allow-run-as-root)
  "$MPIRUN" "${mpi_flags[@]}" --oversubscribe -n 2 "$BIN" eval --dataset folder --data-root "$TREES/model" \
    "${TINY[@]}" --out "$WORK/mpi" >"$OUT" 2>"$ERR" </dev/null
  status=$?
  problem=""
  if [ "$status" -ne 0 ]; then
    problem="exit status $status"
  elif ! grep -q '"ranks": 2' "$WORK/mpi/metrics.json"; then
    problem="metrics.json does not say 2 ranks"
  elif ! cmp -s "$single/per_class.csv" "$WORK/mpi/per_class.csv"; then
    problem="per_class.csv differs from the single run"
  fi
  report "mpirun -n 2 equals a single run (exit $status)" "$problem"
else
  echo "skip  mpirun -n 2 (built without MPI)"
fi

# ---- bad input ---------------------------------------------------------------------------------
bad=$WORK/bad
cp -r "$TREES/voc20" "$bad"
expect_error "missing data root" -- eval --dataset voc20 --data-root "$WORK/nothing" --predictions "$TREES/voc20_pred" --out "$WORK/e1"
grep -q "$WORK/nothing" "$ERR" || report "missing data root is named" "message does not name it"
expect_error "unknown dataset" -- eval --dataset imagenet --data-root "$bad" --out "$WORK/e2"
expect_error "unknown protocol" -- eval --dataset voc20 --data-root "$bad" --predictions "$TREES/voc20_pred" --protocol fancy --out "$WORK/e3"
expect_error "pnp-ovss protocol on a folder dataset" -- eval --dataset folder --data-root "$TREES/folder" --predictions "$TREES/folder_pred" --protocol pnp-ovss --out "$WORK/e4"
expect_error "bad shard" -- eval --dataset voc20 --data-root "$bad" --predictions "$TREES/voc20_pred" --shard 3/3 --out "$WORK/e5"
expect_error "layer above the model's" -- eval --dataset folder --data-root "$TREES/model" --model "$MODEL" --size 64 --layer 4 --head 3 --out "$WORK/e6"
: >"$bad/VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt"
expect_error "empty split file" -- eval --dataset voc20 --data-root "$bad" --predictions "$TREES/voc20_pred" --out "$WORK/e7"
grep -q "val.txt" "$ERR" || report "empty split file is named" "message does not name val.txt"

# One bad image of three: a missing label, a label of another size, a value outside the classes.
broken=$WORK/broken
cp -r "$TREES/folder" "$broken"
cp "$broken/images/a.png" "$broken/images/b.png"
cp "$broken/images/a.png" "$broken/images/c.png"
cp "$broken/images/a.png" "$broken/images/d.png"
cp "$TREES/model/labels/m0.png" "$broken/labels/c.png"                            # 40x30, image is 4x2
cp "$TREES/voc20/VOCdevkit/VOC2012/SegmentationClass/2007_000002.png" "$broken/labels/d.png"  # holds 20
preds=$WORK/broken_pred
cp -r "$TREES/folder_pred" "$preds"
for s in b c d; do cp "$preds/a.png" "$preds/$s.png"; done
"$BIN" eval --dataset folder --data-root "$broken" --predictions "$preds" --out "$WORK/broken_out" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 1 ]; then
  problem="exit status $status, expected 1"
elif crash_report; then
  problem="crash report"
elif ! grep -q "labels/b.png" "$ERR"; then
  problem="the missing label b.png is not named"
elif ! grep -q "labels/c.png' is 40x30" "$ERR"; then
  problem="the label of another size (c.png) is not named"
elif ! grep -q "labels/d.png' holds the label value 20" "$ERR"; then
  problem="the out-of-range value in d.png is not named"
elif ! grep -q '"failed": 3' "$WORK/broken_out/metrics.json"; then
  problem="metrics.json does not count 3 failed images"
else
  check_metrics "the good image is still scored" "$WORK/broken_out" 50.0 66.67 66.67
fi
report "bad images are reported at the end, the run goes on (exit $status)" "$problem"

# With the model, a label PNG of another size than its image fails that image, naming both.
"$BIN" eval --dataset folder --data-root "$broken" "${TINY[@]}" --out "$WORK/broken_model" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 1 ]; then
  problem="exit status $status, expected 1"
elif ! grep -q "images/c.png' is 4x2 but its label PNG '.*labels/c.png' is 40x30" "$ERR"; then
  problem="no message naming c.png and its label with both sizes"
elif [ ! -s "$WORK/broken_model/images/a.json" ]; then
  problem="the good image a was not scored"
fi
report "model run: label of another size than its image (exit $status)" "$problem"

"$BIN" eval --dataset folder --data-root "$broken" "${TINY[@]}" --batch-size 4 --out "$WORK/broken_batched" \
  >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 1 ]; then
  problem="exit status $status, expected 1"
elif ! grep -q "images/c.png' is 4x2 but its label PNG '.*labels/c.png' is 40x30" "$ERR"; then
  problem="no message naming c.png and its label with both sizes"
elif ! cmp -s "$WORK/broken_model/images/a.json" "$WORK/broken_batched/images/a.json" 2>/dev/null &&
  ! diff <(grep -v seconds "$WORK/broken_model/images/a.json") <(grep -v seconds "$WORK/broken_batched/images/a.json") >/dev/null; then
  problem="the good image a is scored differently in a batch"
fi
report "model run in batches: the bad images fail alone (exit $status)" "$problem"

finish

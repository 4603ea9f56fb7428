#!/usr/bin/env bash
# Bad input to the pnp-ovss command line must end in a one-line "error: ..." on stderr and a
# non-zero exit status: no crash, no stack trace, no "terminate called". One success case keeps
# the script from passing when the tool fails on everything.
#
# Usage: tests/cli_errors.sh PATH/TO/pnp-ovss TEST_DATA_DIR
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PNP_OVSS_BINARY TEST_DATA_DIR" >&2
  exit 2
fi
BIN=$1
DATA=$2
FIXTURE=$DATA/blip_itm
IMAGE=$DATA/images/coco_000000039769.png
for need in "$BIN" "$FIXTURE/model.safetensors" "$IMAGE"; do
  if [ ! -e "$need" ]; then
    echo "missing $need" >&2
    exit 2
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_cli_errors.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=tests/cli_test_lib.sh
source "$(dirname "$0")/cli_test_lib.sh"

# A copy of the fixture model with `file` replaced by `source` (or deleted when source is "-").
model_with() {  # model_with NAME FILE SOURCE
  local dir=$WORK/$1
  cp -r "$FIXTURE" "$dir"
  if [ "$3" = "-" ]; then
    rm -f "$dir/$2"
  else
    cp "$3" "$dir/$2"
  fi
  echo "$dir"
}

truncated=$WORK/truncated.safetensors
head -c 100000 "$FIXTURE/model.safetensors" >"$truncated"
garbage=$WORK/garbage.safetensors
printf 'this is not a checkpoint, only text that pretends to be one\n' >"$garbage"
text_png=$WORK/notes.png
printf 'plain text, not an image\n' >"$text_png"
empty_png=$WORK/empty.png
: >"$empty_png"
clip_config=$WORK/clip_config.json
sed 's/"model_type": "blip"/"model_type": "clip"/' "$FIXTURE/config.json" >"$clip_config"
grep -q '"clip"' "$clip_config" || { echo "could not derive a clip config" >&2; exit 2; }

expect_error "option value of the wrong type" -- segment "$IMAGE" --classes "cat" --layer abc
expect_error "unknown option" -- match "$IMAGE" --text "two cats" --no-such-option
expect_error "no subcommand" --
expect_error "missing model directory" -- match "$IMAGE" --text "two cats" --model "$WORK/no_such_model"
expect_error "missing relative model directory" -- match "$IMAGE" --text "two cats" --model "no_such_dir/model"
expect_error "truncated model.safetensors" -- \
  match "$IMAGE" --text "two cats" --model "$(model_with truncated model.safetensors "$truncated")"
expect_error "garbage model.safetensors" -- \
  match "$IMAGE" --text "two cats" --model "$(model_with garbage model.safetensors "$garbage")"
expect_error "info with corrupt model.safetensors" -- \
  info "$(model_with info_garbage model.safetensors "$garbage")"
expect_error "unsupported model_type" -- \
  match "$IMAGE" --text "two cats" --model "$(model_with clip config.json "$clip_config")"
expect_error "missing vocab.txt" -- \
  match "$IMAGE" --text "two cats" --model "$(model_with no_vocab vocab.txt -)"
expect_error "unreadable image path" -- match "$WORK/no_such_image.png" --text "two cats" --model "$FIXTURE"
expect_error "image path is a directory" -- match "$WORK" --text "two cats" --model "$FIXTURE"
expect_error "text file as image" -- match "$text_png" --text "two cats" --model "$FIXTURE"
expect_error "zero-byte image" -- match "$empty_png" --text "two cats" --model "$FIXTURE"
expect_error "corrupt image from the corpus" -- \
  match "$DATA/bad/image_bmp_truncated_pixels.bmp" --text "two cats" --model "$FIXTURE"
expect_error "empty --text" -- match "$IMAGE" --text "" --model "$FIXTURE"
expect_error "--text of only spaces" -- match "$IMAGE" --text "    " --model "$FIXTURE"

# check on a folder that is no fixture: the summary line on stdout and exit status 1.
"$BIN" check "$WORK" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 1 ]; then
  problem="exit status $status, expected 1"
elif ! grep -qE '^0 passed, [1-9][0-9]* failed$' "$OUT"; then
  problem="no '0 passed, M failed' line on stdout"
elif grep -q -e 'terminate called' -e 'Exception raised from' "$ERR"; then
  problem="stderr holds a crash report"
fi
report "check on a folder that is not a fixture (exit $status)" "$problem"

# ---- the program's own options and how option errors read ---------------------------------------
# --version: exactly one line "pnp-ovss X.Y.Z" on stdout, exit status 0.
"$BIN" --version >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif [ "$(wc -l <"$OUT")" -ne 1 ] || ! grep -qE '^pnp-ovss [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"; then
  problem="stdout is not exactly one line 'pnp-ovss X.Y.Z'"
elif [ -s "$ERR" ]; then
  problem="unexpected output on stderr"
fi
report "--version prints 'pnp-ovss X.Y.Z' (exit $status)" "$problem"

# --threads, an option of the program, before and after the subcommand.
for place in before after; do
  if [ "$place" = before ]; then
    "$BIN" --threads 1 info "$FIXTURE" >"$OUT" 2>"$ERR" </dev/null
  else
    "$BIN" info --threads 1 "$FIXTURE" >"$OUT" 2>"$ERR" </dev/null
  fi
  status=$?
  problem=""
  if [ "$status" -ne 0 ]; then
    problem="exit status $status"
  elif ! grep -q 'BlipForImageTextRetrieval' "$OUT"; then
    problem="no model type line"
  fi
  report "--threads 1 $place the subcommand (exit $status)" "$problem"
done
expect_error "--threads 0 before the subcommand" -- --threads 0 info "$FIXTURE"
expect_error "--threads 0 after the subcommand" -- info "$FIXTURE" --threads 0

# A repeated option: one line that says so in our words, not CLI11's ("At Most 1 required").
expect_error "repeated --layer" -- segment "$IMAGE" --classes cat --model "$FIXTURE" --layer 1 --layer 2 --out "$WORK/rep"
problem=""
grep -q -- '^error: --layer was given 2 times' "$ERR" || problem="the message does not say --layer was given 2 times"
grep -qi 'at most' "$ERR" && problem="$problem CLI11's 'At Most' wording;"
report "repeated option message" "$problem"

# The usage line names the program, not the path it was run from.
"$BIN" segment --help >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
usage=$(grep -m1 '^Usage: ' "$OUT")
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif [ -z "$usage" ]; then
  problem="no 'Usage: ' line"
elif ! printf '%s\n' "$usage" | grep -q '^Usage: pnp-ovss segment '; then
  problem="usage line does not start with 'Usage: pnp-ovss segment ': $usage"
elif printf '%s\n' "$usage" | grep -q '/'; then
  problem="usage line holds a path: $usage"
fi
report "segment --help usage line names pnp-ovss (exit $status)" "$problem"

# A bad setting is named as it was written on the command line.
expect_error "--layer 0" -- segment "$IMAGE" --classes cat --model "$FIXTURE" --size 64 --layer 0 --out "$WORK/l0"
problem=""
grep -q -- '^error: --layer 0 ' "$ERR" || problem="the message does not start with '--layer 0'"
report "--layer 0 message names the option" "$problem"

# The success case.
"$BIN" match "$IMAGE" --text "two cats" --model "$FIXTURE" >"$OUT" 2>"$ERR" </dev/null
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif ! grep -qE 'itm match [0-9.]+ .*"two cats"' "$OUT"; then
  problem="no 'itm match' line for the text"
elif [ -s "$ERR" ]; then
  problem="unexpected output on stderr"
fi
report "valid match (exit $status)" "$problem"

finish

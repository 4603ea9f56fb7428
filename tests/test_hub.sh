#!/usr/bin/env bash
# Hub ids end to end against a fake hub on 127.0.0.1 (tests/fake_hub.py serving the tiny model
# of tests/data/blip_itm as test-org/tiny-blip): download into the Hugging Face cache layout,
# no request on a second resolution, offline mode, optional files recorded as absent, unknown
# repository / revision (404), gated repository (401, 403 with a token), unreachable endpoint,
# a missing blob, resume after a dropped connection and from a leftover .incomplete file, a
# server that ignores Range, a connection that stays cut, Ctrl-C during a download, and
# corrupted downloads caught by their hash.
#
# Usage: tests/test_hub.sh PATH/TO/pnp-ovss PYTHON3 TEST_DATA_DIR
set -u

if [ $# -ne 3 ]; then
  echo "usage: $0 PNP_OVSS_BINARY PYTHON3 TEST_DATA_DIR" >&2
  exit 2
fi
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
PY=$2
DATA=$(cd "$3" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL_SRC=$DATA/blip_itm
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_hub.XXXXXX")
# shellcheck source=tests/cli_test_lib.sh
source "$HERE/cli_test_lib.sh"

LOG=$WORK/hub.log
server_pid=""
stop_hub() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=""
  fi
}
trap 'stop_hub; rm -rf "$WORK"' EXIT

# start_hub [fake_hub.py switches]: a fresh server with an empty request log; sets HF_ENDPOINT.
start_hub() {
  stop_hub
  : >"$LOG"
  : >"$WORK/port"
  "$PY" "$HERE/fake_hub.py" --folder "$MODEL_SRC" --log "$LOG" "$@" >"$WORK/port" 2>"$WORK/hub.err" &
  server_pid=$!
  for _ in $(seq 200); do
    grep -q '^port ' "$WORK/port" && break
    sleep 0.05
  done
  export HF_ENDPOINT="http://127.0.0.1:$(sed -n 's/^port //p' "$WORK/port")"
}

# A clean environment: no token, no user cache, no offline switch.
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HOME HF_HUB_OFFLINE XDG_CACHE_HOME HUGGINGFACE_HUB_CACHE
export HOME=$WORK/home
mkdir -p "$HOME"
export HF_HUB_CACHE=$WORK/cache
REPO_DIR=$HF_HUB_CACHE/models--test-org--tiny-blip
COMMIT=$(cd "$HERE" && "$PY" -c 'import fake_hub; print(fake_hub.COMMIT)')
SNAP=$REPO_DIR/snapshots/$COMMIT
NEEDED="config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json preprocessor_config.json"
MODEL_SHA=$(sha256sum <"$MODEL_SRC/model.safetensors" | cut -d' ' -f1)
git_blob_id() { "$PY" -c 'import sys, hashlib; d = open(sys.argv[1], "rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$1"; }
CONFIG_ID=$(git_blob_id "$MODEL_SRC/config.json")

run() { "$BIN" "$@" >"$OUT" 2>"$ERR" </dev/null; }
requests() { grep -c . "$LOG"; }
# The run failed with status 1..127 and its last stderr line is "error: ..." containing every
# given pattern.
failed_with() {
  local status=$1
  shift
  if [ "$status" -eq 0 ] || [ "$status" -ge 128 ]; then echo "exit status $status"; return; fi
  crash_report && { echo "crash report on stderr"; return; }
  local last
  last=$(tail -n 1 "$ERR")
  case $last in error:*) ;; *) echo "last stderr line is not 'error: ...'"; return ;; esac
  for p in "$@"; do
    grep -qF -- "$p" <<<"$last" || { echo "message lacks '$p'"; return; }
  done
}

# ---- first download -------------------------------------------------------------------------------
start_hub
run info test-org/tiny-blip
status=$?
problem=""
if [ "$status" -ne 0 ]; then
  problem="exit status $status"
elif [ "$(cat "$REPO_DIR/refs/main" 2>/dev/null)" != "$COMMIT" ]; then
  problem="refs/main does not hold the commit $COMMIT"
else
  for f in $NEEDED; do
    target=$(readlink "$SNAP/$f")
    case $target in ../../blobs/*) ;; *) problem="$problem $f is not a relative link to ../../blobs ($target);" ;; esac
    cmp -s "$SNAP/$f" "$MODEL_SRC/$f" || problem="$problem $f differs from the served file;"
  done
  [ "$(readlink "$SNAP/model.safetensors")" = "../../blobs/$MODEL_SHA" ] || problem="$problem model.safetensors blob is not named by its sha256;"
  [ "$(readlink "$SNAP/config.json")" = "../../blobs/$CONFIG_ID" ] || problem="$problem config.json blob is not named by its git blob id;"
fi
report "download into the cache layout (exit $status)" "$problem"

problem=""
for f in reference.json reference.safetensors input.png random.png; do
  grep -q "/$f " "$LOG" && problem="$problem fetched $f;"
done
[ -z "$(find "$HF_HUB_CACHE" -name '*.incomplete')" ] || problem="$problem .incomplete file left;"
grep -q "^GET /lfs/$MODEL_SHA range=- auth=no" "$LOG" || problem="$problem no GET of the large file's storage URL;"
report "only the model's files are fetched" "$problem"

problem=""
grep -q '^downloading test-org/tiny-blip model.safetensors (7.3 MB)$' "$ERR" || problem="no 'downloading ... (7.3 MB)' line;"
grep -qE '^downloaded model.safetensors \(7.3 MB, [0-9.]+ MB/s\)$' "$ERR" || problem="$problem no 'downloaded ... MB/s' line"
report "progress shows size and speed" "$problem"

: >"$LOG"
run info test-org/tiny-blip
status=$?
problem=""
[ "$status" -eq 0 ] || problem="exit status $status"
[ "$(requests)" -eq 0 ] || problem="$problem $(requests) requests: $(head -n 3 "$LOG" | tr '\n' '|')"
[ -s "$ERR" ] && problem="$problem stderr not empty"
report "second resolution makes no request" "$problem"

# The downloaded model segments exactly as the folder it came from (the golden of segment_cli).
run segment "$DATA/images/coco_000000039769.png" --classes "cat, couch, remote control" \
  --model test-org/tiny-blip --size 64 --layer 2 --head 3 --out "$WORK/seg"
status=$?
problem=""
[ "$status" -eq 0 ] || problem="exit status $status"
cmp -s "$WORK/seg/coco_000000039769.labels.png" "$DATA/golden/coco_000000039769.labels.png" ||
  problem="$problem labels differ from the golden"
report "segment --model HUB_ID equals the model folder" "$problem"

: >"$LOG"
HF_HUB_OFFLINE=1 run info test-org/tiny-blip
status=$?
problem=""
[ "$status" -eq 0 ] || problem="exit status $status"
[ "$(requests)" -eq 0 ] || problem="$problem requests made"
report "offline mode uses the cache" "$problem"

HF_HUB_OFFLINE=1 run info "test-org/tiny-blip@$COMMIT"
status=$?
report "a commit as revision (offline)" "$([ "$status" -eq 0 ] || echo "exit status $status")"

: >"$LOG"
HF_HUB_CACHE=$WORK/empty_cache HF_HUB_OFFLINE=1 expect_error "offline without the model" -- info test-org/tiny-blip
report "offline error says why" "$(failed_with 1 "HF_HUB_OFFLINE=1" "nor in the Hugging Face cache")"
report "offline mode makes no request" "$([ "$(requests)" -eq 0 ] || echo "requests made")"

# The repository is cached, the revision asked for is not: say so, and name what is cached.
HF_HUB_OFFLINE=1 expect_error "offline, revision not cached" -- info test-org/tiny-blip@v2
report "offline message names the revision and the cached ones" \
  "$(failed_with 1 "holds 'test-org/tiny-blip' but not its revision 'v2' (cached: main)" "without HF_HUB_OFFLINE" \
    "pass a cached revision, e.g. test-org/tiny-blip@main")$(grep -q 'nor in the Hugging Face cache' "$ERR" && echo ' old wording')"
HF_ENDPOINT=http://127.0.0.1:1 expect_error "no network, revision not cached" -- info test-org/tiny-blip@v2
report "no-network message names the cached revisions" \
  "$(failed_with 1 "cannot reach" "but not its revision 'v2' (cached: main)" "test-org/tiny-blip@main")$(grep -q 'HF_HUB_OFFLINE' "$ERR" && echo ' offline hint that cannot help')"

# ---- optional files absent on the hub --------------------------------------------------------------
run info test-org/lean-blip
status=$?
problem=""
lean=$HF_HUB_CACHE/models--test-org--lean-blip
[ "$status" -eq 0 ] || problem="exit status $status"
for f in special_tokens_map.json preprocessor_config.json; do
  [ -f "$lean/.no_exist/$COMMIT/$f" ] || problem="$problem no .no_exist/$f;"
done
: >"$LOG"
run info test-org/lean-blip
[ "$(requests)" -eq 0 ] || problem="$problem the second run made requests"
report "optional files answered 404 are recorded as absent" "$problem"

# ---- errors ---------------------------------------------------------------------------------------
expect_error "unknown repository" -- info test-org/no-such-model
report "404 message" "$(failed_with 1 "'test-org/no-such-model' not found" "HTTP 404" "check the id")"
expect_error "unknown revision" -- info test-org/tiny-blip@v9
report "unknown revision message" "$(failed_with 1 "revision 'v9'" "not found")"
expect_error "gated repository" -- info test-org/gated-blip
report "401 message" "$(failed_with 1 "gated" "HTTP 401" "accept its conditions" "HF_TOKEN")"
HF_TOKEN=hf_test_token expect_error "gated repository with a token" -- info test-org/gated-blip
report "403 message and the token is sent" \
  "$(failed_with 1 "HTTP 403" "the token in use has no access")$(grep -q 'gated-blip.* auth=yes' "$LOG" || echo ' no Authorization header')"
echo hf_file_token >"$WORK/token_file"
HF_TOKEN_PATH=$WORK/token_file expect_error "token from the token file" -- info test-org/gated-blip
report "the token file is read" "$(failed_with 1 "HTTP 403")"

HF_HUB_CACHE=$WORK/cache_nonet HF_ENDPOINT=http://127.0.0.1:1 expect_error "unreachable endpoint" -- info test-org/tiny-blip
report "no network message" "$(failed_with 1 "cannot" "http://127.0.0.1:1" "HF_HUB_OFFLINE=1")"

# ---- a cache entry whose blob is gone --------------------------------------------------------------
rm "$REPO_DIR/blobs/$CONFIG_ID"
HF_HUB_OFFLINE=1 expect_error "missing blob, offline" -- info test-org/tiny-blip
report "missing blob message" "$(failed_with 1 "points to a blob that is missing")"
: >"$LOG"
run info test-org/tiny-blip
status=$?
problem=""
[ "$status" -eq 0 ] || problem="exit status $status"
cmp -s "$REPO_DIR/blobs/$CONFIG_ID" "$MODEL_SRC/config.json" || problem="$problem blob not restored;"
grep -q "^GET /test-org/tiny-blip/resolve/$COMMIT/config.json " "$LOG" || problem="$problem config.json not fetched again"
report "missing blob is downloaded again online" "$problem"

# ---- resume -----------------------------------------------------------------------------------------
start_hub --drop-after 1000000
HF_HUB_CACHE=$WORK/cache_drop run info test-org/tiny-blip
status=$?
problem=""
blob=$WORK/cache_drop/models--test-org--tiny-blip/blobs/$MODEL_SHA
[ "$status" -eq 0 ] || problem="exit status $status"
grep -q "^GET /lfs/$MODEL_SHA range=bytes=1000000- " "$LOG" || problem="$problem no resuming request from byte 1000000;"
[ "$(sha256sum <"$blob" 2>/dev/null | cut -d' ' -f1)" = "$MODEL_SHA" ] || problem="$problem blob hash wrong;"
grep -q '^connection lost at 1.0 MB' "$ERR" || problem="$problem no 'connection lost' note;"
report "resume after the server drops the connection" "$problem"

cache=$WORK/cache_partial
mkdir -p "$cache/models--test-org--tiny-blip/blobs"
head -c 3000000 "$MODEL_SRC/model.safetensors" >"$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA.incomplete"
start_hub
HF_HUB_CACHE=$cache run info test-org/tiny-blip
status=$?
problem=""
[ "$status" -eq 0 ] || problem="exit status $status"
grep -q "^GET /lfs/$MODEL_SHA range=bytes=3000000- " "$LOG" || problem="$problem no request from byte 3000000;"
grep -q 'model.safetensors: resuming at 3.0 of 7.3 MB' "$ERR" || problem="$problem no 'resuming at' line;"
cmp -s "$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA" "$MODEL_SRC/model.safetensors" || problem="$problem blob differs"
report "resume a leftover .incomplete file" "$problem"

# A rerun against a working hub that must resume the model file of $cache from byte $1 and end
# with the right blob; reported as $2.
check_rerun_resumes_from() {
  start_hub
  HF_HUB_CACHE=$cache run info test-org/tiny-blip
  local status=$? problem=""
  [ "$status" -eq 0 ] || problem="exit status $status"
  grep -q "^GET /lfs/$MODEL_SHA range=bytes=$1- " "$LOG" || problem="$problem no request from byte $1;"
  [ "$(sha256sum <"$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA" 2>/dev/null | cut -d' ' -f1)" = "$MODEL_SHA" ] ||
    problem="$problem blob hash wrong"
  report "$2" "$problem"
}

# A server without resume support answers the Range request with the whole file (200): what was on
# disk (here not even a prefix of the file) is overwritten, and the display says it restarts.
cache=$WORK/cache_norange
mkdir -p "$cache/models--test-org--tiny-blip/blobs"
head -c 3000000 /dev/zero | tr '\0' x >"$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA.incomplete"
start_hub --ignore-range
HF_HUB_CACHE=$cache run info test-org/tiny-blip
status=$?
problem=""
blob=$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA
[ "$status" -eq 0 ] || problem="exit status $status"
grep -q "^GET /lfs/$MODEL_SHA range=bytes=3000000- " "$LOG" || problem="$problem no request from byte 3000000;"
grep -q "model.safetensors (7.3 MB): the server does not support resuming, so the download restarts and the 3.0 MB downloaded before are discarded$" "$ERR" ||
  problem="$problem no 'does not support resuming' line;"
grep -q 'resuming at' "$ERR" && problem="$problem says 'resuming at';"
[ "$(sha256sum <"$blob" 2>/dev/null | cut -d' ' -f1)" = "$MODEL_SHA" ] || problem="$problem blob hash wrong;"
[ "$(stat -c %s "$blob" 2>/dev/null)" = "$(stat -c %s "$MODEL_SRC/model.safetensors")" ] || problem="$problem blob size wrong;"
[ -z "$(find "$cache" -name '*.incomplete')" ] || problem="$problem .incomplete left;"
report "a server that ignores Range: restart, no corrupt file" "$problem"

# The connection is cut after 1 MB and stays broken: the partial file is kept for a rerun.
cache=$WORK/cache_cut
start_hub --cut-after 1000000
HF_HUB_CACHE=$cache run info test-org/tiny-blip
status=$?
problem=$(failed_with "$status" "the connection was cut after 1.0 of 7.3 MB of model.safetensors of 'test-org/tiny-blip'" \
  "the partial download is kept: run the command again to resume it")
grep -q 'HF_HUB_OFFLINE' "$ERR" && problem="$problem offline hint that cannot help;"
[ "$(stat -c %s "$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA.incomplete" 2>/dev/null)" = 1000000 ] ||
  problem="$problem the partial file is not kept;"
report "connection cut for good: message" "$problem"
check_rerun_resumes_from 1000000 "connection cut for good: the rerun resumes"

# Ctrl-C during a (slow) download: one line says what became of it, and the process ends as
# SIGINT ends it. A background job of a script ignores SIGINT: the default action is restored
# before pnp-ovss starts.
cache=$WORK/cache_interrupt
incomplete=$cache/models--test-org--tiny-blip/blobs/$MODEL_SHA.incomplete
start_hub --slow 2000000
HF_HUB_CACHE=$cache "$PY" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  "$BIN" info test-org/tiny-blip >"$OUT" 2>"$ERR" </dev/null &
pid=$!
for _ in $(seq 200); do
  [ "$(stat -c %s "$incomplete" 2>/dev/null || echo 0)" -ge 500000 ] && break
  sleep 0.05
done
kill -INT "$pid"
wait "$pid"
status=$?
problem=""
[ "$status" -eq 130 ] || problem="exit status $status, not 130;"
tail -n 1 "$ERR" | grep -qE "^interrupted: the download of model.safetensors of 'test-org/tiny-blip' stopped at [0-9]+\.[0-9] of 7.3 MB; the partial file is kept, and running the command again resumes it$" ||
  problem="$problem no 'interrupted: ...' line;"
kept=$(stat -c %s "$incomplete" 2>/dev/null || echo 0)
[ "$kept" -gt 0 ] || problem="$problem the partial file is not kept;"
report "Ctrl-C during a download says it resumes" "$problem"
check_rerun_resumes_from "$kept" "after Ctrl-C the rerun resumes"

# ---- corrupted downloads ------------------------------------------------------------------------
for file in model.safetensors config.json; do
  start_hub --corrupt "$file"
  cache=$WORK/cache_corrupt_$file
  HF_HUB_CACHE=$cache run info test-org/tiny-blip
  status=$?
  kind=sha256 id=$MODEL_SHA
  [ "$file" = config.json ] && kind="git blob hash" id=$CONFIG_ID
  problem=$(failed_with "$status" "download of $file of 'test-org/tiny-blip' is corrupt" "its $kind is" "deleted")
  [ -z "$(find "$cache" -name '*.incomplete')" ] || problem="$problem .incomplete left;"
  [ -e "$cache/models--test-org--tiny-blip/blobs/$id" ] && problem="$problem the corrupt blob was kept;"
  [ -e "$cache/models--test-org--tiny-blip/snapshots/$COMMIT/$file" ] && problem="$problem snapshot entry created;"
  report "corrupted $file detected by its hash" "$problem"
done

finish

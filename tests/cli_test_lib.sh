# Shared by the command-line test scripts (source it after setting WORK, a scratch folder).
# Each case calls `report NAME PROBLEM` ("" = pass); `finish` prints the closing
# "N passed, M failed" line and returns non-zero when any case failed.

passed=0
failed=0
OUT=$WORK/stdout
ERR=$WORK/stderr

report() {  # report NAME PROBLEM ("" = pass)
  if [ -z "$2" ]; then
    passed=$((passed + 1))
    echo "ok    $1"
  else
    failed=$((failed + 1))
    echo "FAIL  $1: $2"
    echo "      stdout: $(head -c 800 "$OUT" | tr '\n' '|')"
    echo "      stderr: $(head -c 800 "$ERR" | tr '\n' '|')"
  fi
}

crash_report() { grep -q -e 'terminate called' -e 'Exception raised from' -e 'frame #' "$ERR"; }

# expect_error NAME -- ARGS...: pnp-ovss ($BIN) exits with a status in 1..127 and prints exactly
# one stderr line, "error: ...", with no crash report.
expect_error() {
  local name=$1
  shift 2
  "$BIN" "$@" >"$OUT" 2>"$ERR" </dev/null
  local status=$?
  local lines
  lines=$(wc -l <"$ERR")
  local problem=""
  if [ "$status" -eq 0 ]; then
    problem="exit status 0"
  elif [ "$status" -ge 128 ]; then
    problem="killed by signal $((status - 128))"
  elif [ "$lines" -ne 1 ] || [ "$(wc -c <"$ERR")" -ne "$(head -n 1 "$ERR" | wc -c)" ]; then
    problem="stderr has $lines lines, expected exactly one"
  elif ! head -n 1 "$ERR" | grep -q '^error: .'; then
    problem="stderr does not start with 'error: '"
  elif crash_report; then
    problem="stderr holds a crash report"
  fi
  report "$name (exit $status)" "$problem"
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

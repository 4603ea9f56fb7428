#!/usr/bin/env bash
# `pip install .` as the README says, in a scratch virtual environment that sees Debian's packages
# (no package index is used): the module and its type stub land in site-packages, and the
# installed module segments the bundled photo. The build folder given is reused, so this takes
# seconds after the main build.
#
# Usage: tests/test_pip_install.sh SOURCE_DIR BUILD_DIR TEST_DATA_DIR PYTHON
set -u
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
DATA=$(cd "$3" && pwd)
PYTHON=$4
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pnpovss_pip.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if ! "$PYTHON" -c "import venv, ensurepip" 2>/dev/null; then
  echo "skip  pip install (python3-venv is not installed)"
  exit 0
fi
fail() { echo "FAIL  $1"; exit 1; }
"$PYTHON" -m venv --system-site-packages "$WORK/venv" >"$WORK/venv.log" 2>&1 || fail "venv: $(tail -2 "$WORK/venv.log")"
# A copy of the sources, so that pip's build files stay out of the checkout.
mkdir "$WORK/src"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard 2>/dev/null | xargs -0 cp --parents -t "$WORK/src" 2>/dev/null) ||
  cp -r "$SRC/." "$WORK/src"
PNPOVSS_BUILD_DIR=$BUILD "$WORK/venv/bin/pip" install --no-build-isolation --no-index "$WORK/src" \
  >"$WORK/pip.log" 2>&1 || fail "pip install: $(tail -5 "$WORK/pip.log")"
site=$("$WORK/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
ls "$site"/pnpovss*.so >/dev/null 2>&1 || fail "no pnpovss*.so in $site"
[ -f "$site/pnpovss.pyi" ] || fail "no pnpovss.pyi in $site"
cd "$WORK" || exit 1
out=$("$WORK/venv/bin/python" - "$DATA" <<'PY' 2>&1
import os, sys
import numpy as np
import pnpovss
assert os.path.dirname(pnpovss.__file__).startswith(sys.prefix), pnpovss.__file__
data = sys.argv[1]
seg = pnpovss.Segmenter(os.path.join(data, "blip_itm"), size=64, layer=2, head=3, postprocess="none")
image = np.zeros((40, 60, 3), np.uint8)
image[:, 30:] = 200
r = seg.segment(image, "cat, couch")
assert r.labels.shape == (40, 60), r.labels.shape
print("installed pnpovss", pnpovss.__version__)
PY
) || fail "the installed module: $out"
echo "ok    pip install . ($out)"

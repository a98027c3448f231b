#!/usr/bin/env bash
# bench/deid: secondread deid vs dicognito vs dicom-anonymizer on the same synthetic
# 300 x 512^2 CT files, in the same run, on this machine; prints instances/s side by side.
# Called by `make bench`.  Override the corpus with N=... SIZE=..., the rounds with ROUNDS=...
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
N=${N:-300}
SIZE=${SIZE:-512}
ROUNDS=${ROUNDS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/secondread-bench-deid.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Every tool starts as an installed command would: with its bytecode compiled (uv does not
# compile on install, and PYTHONDONTWRITEBYTECODE may be set), so no tool pays for compiling.
"$PY" -m compileall -q -j0 .venv/lib/python3.11/site-packages shared/src cli/src services/*/src \
    > /dev/null 2>&1 || true
"$PY" -c 'import secrets; print(secrets.token_hex(32))' > "$WORK/key"   # a throwaway key
PYTHONPATH=. "$PY" bench/deid/generate.py "$WORK/src" "$N" "$SIZE"
"$PY" bench/deid/compare.py "$WORK/src" "$WORK" "$WORK/key" "$ROUNDS"

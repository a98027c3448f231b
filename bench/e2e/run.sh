#!/usr/bin/env bash
# bench/e2e: the automated path on the running stack — a 300-instance CT (512x512, about
# 150 MB) uploaded with `secondread submit`, timed until the case is assigned to a reader, each
# stage's time read from the case's status events; the median of CASES (5) cases, printed side
# by side with a reference measured in the same run: the same study stored straight into the
# Orthanc archive (the write every case must make), and the upload alone.
# Called by `make bench`.  Override with CASES=... N=... SIZE=...
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
"$PY" -m secondread_cli.main up >/dev/null
PYTHONPATH=. "$PY" bench/e2e/e2e.py "${CASES:-5}" "${N:-300}" "${SIZE:-512}"

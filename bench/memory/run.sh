#!/usr/bin/env bash
# bench/memory: deidentify's resident memory while it de-identifies one 1,500-instance study
# (synthetic CT, 256x256 by default: about 200 MB) on the running stack. Prints the service's
# RSS before, its peak while the case is handled, and the study's size, side by side.
# Called by `make bench`.  Override with N=... SIZE=...
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
"$PY" -m secondread_cli.main up >/dev/null
PYTHONPATH=. "$PY" bench/memory/memory.py "${N:-1500}" "${SIZE:-256}"

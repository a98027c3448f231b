#!/usr/bin/env bash
# bench/freetext: the free-text PHI detector on the synthetic radiology set (bench/freetext/
# corpus.py) and on the i2b2-format notes philter-lite ships, side by side with philter-lite's
# own stock configuration in the same run: recall per category, precision, clinical terms
# kept, time per text. Called by `make bench`. Add --json for one JSON object.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/freetext/evaluate.py "$@"

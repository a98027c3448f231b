#!/usr/bin/env bash
# Ingest benchmark: the same 300-instance 512x512 CT sent by dcmtk storescu over one association
# into secondread (11112) and into the local Orthanc archive (4242), in the same run.
# Needs the local stack (make up). Prints instances/s for both, side by side.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHONPATH=. exec .venv/bin/python bench/ingest/storescu_bench.py "$@"

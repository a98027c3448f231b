#!/usr/bin/env bash
# bench/viewer: reading a synthetic CT series in the viewer (OHIF in headless Chromium, through
# reporting's DICOMweb proxy): time to the first image and to the whole series, beside the same
# frames fetched straight from the archive's DICOMweb and through the proxy without a browser,
# in the same run. Needs the local stack (make up).  N=200 SIZE=512 ROUNDS=3 READER=rad-novak
# by default (the reader whose open cases decide each request; a desk of a few cases).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHONPATH=. exec .venv/bin/python bench/viewer/measure.py "$@"

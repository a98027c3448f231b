"""storescu into secondread (11112) and into the Orthanc archive (4242): instances/s, side by side.

secondread answers each C-STORE once the instance is in its fsynced spool (the durability point,
docs/ingest.md); the time until the spool is drained into the object store and PostgreSQL is
reported too. The study is synthetic (tests/synthetic.py). The Orthanc copy is deleted after the
run; the secondread copy stays parked (no intake) like any study that came without one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from tests.synthetic import Patient, ct_study, write_study

ORTHANC = "http://127.0.0.1:8042"


def storescu(port: int, called: str, files: list[Path]) -> float:
    """Send ``files`` over one association; return the seconds it took."""
    t0 = time.perf_counter()
    done = subprocess.run(
        ["storescu", "-aet", "DEMO_PACS", "-aec", called, "127.0.0.1", str(port),
         *map(str, files)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"storescu to {port} failed: {done.stderr[-500:]}")
    return elapsed


def spool_backlog(spool: Path) -> int:
    return sum(1 for _ in spool.glob("*/*.dcm")) if spool.exists() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    stack = Path(os.environ.get("SECONDREAD_STACK_DIR", ".stack")).resolve()
    spool = stack / "ingest" / "spool"
    patient = Patient(patient_id=f"BENCH-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_study(
            Path(tmp), ct_study(patient, count=args.count, size=args.size, seed=uuid.uuid4().hex)
        )
        files = sorted(folder.glob("*.dcm"))
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"study: {len(files)} instances, {args.size}x{args.size} CT, {mb:.0f} MB")
        t_sr = storescu(11112, "SECONDREAD", files)
        t0 = time.perf_counter()
        while spool_backlog(spool):
            time.sleep(0.05)
        drain = time.perf_counter() - t0
        t_or = storescu(4242, "SECONDREAD_ARCH", files)
    n = len(files)
    print(f"{'target':<44}{'seconds':>9}{'instances/s':>13}")
    print(f"{'secondread 11112 (acknowledged = spooled)':<44}{t_sr:>9.2f}{n / t_sr:>13.1f}")
    print(f"{'secondread, until in S3 + PostgreSQL':<44}{t_sr + drain:>9.2f}"
          f"{n / (t_sr + drain):>13.1f}")  # fmt: skip
    print(f"{'Orthanc archive 4242':<44}{t_or:>9.2f}{n / t_or:>13.1f}")
    print(f"ratio secondread/Orthanc (acknowledged): {t_or / t_sr:.1f}x (target >= 5x)")
    found = httpx.post(
        f"{ORTHANC}/tools/find",
        json={"Level": "Study", "Query": {"PatientID": patient.patient_id}},
        timeout=30,
    ).json()
    for study_id in found:
        httpx.delete(f"{ORTHANC}/studies/{study_id}", timeout=60)


if __name__ == "__main__":
    main()

"""bench/memory: deidentify's RSS while one large study goes through it (see run.sh).

The RSS is read from ``/proc/<pid>/status`` (``VmRSS``) of every deidentify replica the stack
runs, every 0.2 s from the upload until the case is de-identified; the bound it is held to is
documented in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from secondread_cli import stack
from secondread_cli.submit import submit_case
from secondread_shared.casestatus import status_events
from tests.synthetic import Patient, ct_study, write_study

KAFKA = "127.0.0.1:9092"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def deidentify_pids() -> list[int]:
    return [s.pid for s in stack.status() if s.name.startswith("deidentify") and s.pid]


def main(count: str = "1500", size: str = "256") -> None:
    n, px = int(count), int(size)
    work = Path(tempfile.mkdtemp(prefix="secondread-bench-memory-"))
    try:
        patient = Patient(patient_id=f"BENCH-MEM-{uuid.uuid4().hex[:8]}")
        folder = write_study(work / "s", ct_study(patient, count=n, size=px, seed=uuid.uuid4().hex))
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        pids = deidentify_pids()
        before = {pid: rss_mb(pid) for pid in pids}
        peak = dict(before)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for pid in pids:
                    try:
                        peak[pid] = max(peak[pid], rss_mb(pid))
                    except OSError:
                        pass
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        intake = {"clinical_question": "Interval change?", "original_report": "Stable.",
                  "referring_physician": {"name": "Dr B", "email": "bench@example.org"},
                  "consent": True}  # fmt: skip
        case_id = submit_case(url="http://127.0.0.1:8001", api_key="demo-hospital-key",
                              folder=folder, intake=intake)["case_id"]  # fmt: skip
        deadline = time.monotonic() + 900
        states: set[str] = set()
        while time.monotonic() < deadline and not states & {"deidentified", "quarantined"}:
            time.sleep(1.0)
            states = {e.state for e in asyncio.run(status_events(KAFKA, case_id))}
        done.set()
        took = time.monotonic() - t0
        if "deidentified" not in states:
            raise SystemExit(f"case {case_id} not de-identified in time: {sorted(states)}")
        print(f"bench/memory: one study of {n} x {px}^2 CT ({mb:.0f} MB), de-identified in "
              f"{took:.0f} s")  # fmt: skip
        print(f"{'deidentify replica':20} {'RSS before':>12} {'peak RSS':>10} {'growth':>8}")
        for pid in pids:
            print(f"{'pid ' + str(pid):20} {before[pid]:10.0f} MB {peak[pid]:8.0f} MB "
                  f"{peak[pid] - before[pid]:6.0f} MB")  # fmt: skip
        print(f"{'reference: the study':20} {mb:10.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""bench/e2e: time a 300-instance CT from ``secondread submit`` to ``assigned`` (see run.sh).

Stages come from the case's ``secondread.case.status.v1`` events (their ``occurred_at``), read
as they come from the topic's end (reading the topic's history again on every poll took more
CPU than a service: the measuring must not slow what it measures):
upload+ingest until ``received``, deidentify until ``deidentified``, routing until
``assigned``. The references are measured in the same run on the same bytes: the upload alone
(``POST /v1/cases`` answered) and the study stored straight into the Orthanc archive with 4
parallel REST writes (the archive write the pipeline cannot avoid).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from secondread_shared import topics
from secondread_shared.casestatus import of_record
from secondread_shared.records import Tail
from tests.synthetic import Patient, ct_study, write_study

KAFKA = "127.0.0.1:9092"
ORTHANC = "http://127.0.0.1:8042"
STAGES = ("received", "deidentified", "assigned")


def submit(folder: Path) -> tuple[str, float, datetime]:
    """``secondread submit``: the case id, the seconds until ingest answered, the start."""
    started = datetime.now(UTC)
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "secondread_cli.main", "submit", str(folder),
         "--question", "Interval change?", "--report-file", str(folder.parent / "report.txt"),
         "--physician-email", "bench@example.org", "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"secondread submit failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])["case_id"], time.monotonic() - t0, started


async def submit_and_time(folder: Path, timeout_s: float = 300) -> tuple[float, dict[str, float]]:
    """Submit ``folder``; the seconds until ingest answered, and each stage's time from the
    start, read from the status events written after the submission began."""
    async with Tail(KAFKA, topics.CASE_STATUS) as tail:
        case_id, upload_s, started = await asyncio.to_thread(submit, folder)
        seen: dict[str, datetime] = {}
        deadline = time.monotonic() + timeout_s
        while "assigned" not in seen:
            if time.monotonic() > deadline:
                raise SystemExit(f"case {case_id} not assigned within {timeout_s:g} s")
            for record in await tail.next_records(1.0):
                status = of_record(record) if record.key == case_id else None
                if status is not None:
                    seen.setdefault(status.state, status.occurred_at)
            if "unassigned" in seen:
                seen.setdefault("assigned", seen["unassigned"])
            if "quarantined" in seen or "dead_lettered" in seen:
                raise SystemExit(f"case {case_id} ended {list(seen)}")
    return upload_s, {s: (seen[s] - started).total_seconds() for s in STAGES}


def orthanc_reference(files: list[Path]) -> float:
    """Seconds to store the study straight into the archive (4 parallel REST writes), then
    delete it again."""
    ids: list[str] = []
    t0 = time.monotonic()
    with httpx.Client(base_url=ORTHANC, timeout=60) as client:

        def put(path: Path) -> str:
            r = client.post("/instances", content=path.read_bytes())
            r.raise_for_status()
            return str(r.json()["ParentStudy"])

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(put, files))
        took = time.monotonic() - t0
        for study in set(ids):
            client.delete(f"/studies/{study}")
    return took


def main(cases: str = "5", count: str = "300", size: str = "512") -> None:
    n, k, px = int(count), int(cases), int(size)
    work = Path(tempfile.mkdtemp(prefix="secondread-bench-e2e-"))
    rows = []
    try:
        print(f"bench/e2e: {k} cases of {n} x {px}^2 CT through the running stack", flush=True)
        for i in range(k):
            patient = Patient(patient_id=f"BENCH-E2E-{uuid.uuid4().hex[:8]}")
            (work / "report.txt").write_text("Findings: stable 6 mm nodule. Impression: benign.")
            folder = write_study(work / f"case-{i}", ct_study(patient, count=n, size=px,
                                                              seed=uuid.uuid4().hex))  # fmt: skip
            mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            # Each timing starts with the disks flushed: neither pays for the other's writes
            # (nor for the study just generated) still being written back.
            os.sync()
            ref = orthanc_reference(sorted(folder.iterdir()))
            os.sync()
            upload_s, at = asyncio.run(submit_and_time(folder))
            times = [at[s] for s in STAGES]
            row = {"upload": upload_s, "received": times[0], "deidentified": times[1] - times[0],
                   "assigned": times[2] - times[1], "total": times[2], "orthanc": ref}  # fmt: skip
            rows.append(row)
            print(f"case {i + 1}: {mb:.0f} MB, until assigned {row['total']:.2f} s (received "
                  f"{row['received']:.2f}, deidentify {row['deidentified']:.2f}, routing "
                  f"{row['assigned']:.2f}); reference: archive write alone {ref:.2f} s",
                  flush=True)  # fmt: skip
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
    print(f"\n{'median of ' + str(k):24} {'seconds':>9}")
    print(f"{'submit answered':24} {med['upload']:9.2f}")
    print(f"{'until received':24} {med['received']:9.2f}")
    print(f"{'deidentify':24} {med['deidentified']:9.2f}")
    print(f"{'routing until assigned':24} {med['assigned']:9.2f}")
    print(f"{'until assigned (p50)':24} {med['total']:9.2f}   target < 6 s")
    ref = "(same study, 4 parallel REST writes)"
    print(f"{'reference: archive write':24} {med['orthanc']:9.2f}   {ref}")


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Fuzzed DICOM against the running ingest (issue 13, "Bad input, beyond today's corpus").

A sample of the files :mod:`tests.dicom_fuzz` generates (truncated, wrong and huge lengths, deep
nesting, undelimited items, character sets, item floods, deflated datasets, structured reports)
goes to the real ingest through both doors: ``POST /v1/cases`` and a C-STORE to its Storage SCP.
Each one ingest's parser refuses gets the same refusal at each door (a 4xx body naming the file
and the fault; a C-STORE failure status with an ErrorComment); each one it accepts is stored.
A deflate bomb (a few hundred kilobytes inflating to 300 MiB) is refused at both doors. The
service stays up throughout (``/health``), is the same process at the end, and its resident
memory stays bounded (``VmRSS``/``VmHWM`` of ``/proc/<pid>/status``, before and after).

``SECONDREAD_FUZZ_SAMPLE`` sets the sample size (default 40); the sample is the same on every
run unless ``SECONDREAD_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from pynetdicom import AE, _config

from secondread_cli import stack
from secondread_ingest.errors import STATUS_BY_REJECTION, SUCCESS, InputRejected
from secondread_ingest.intake import InstanceInfo, inspect_instance
from secondread_ingest.settings import IngestSettings
from secondread_shared.dicom import configure_pydicom
from tests import dicom_fuzz
from tests.dicom_fuzz import Fuzzed
from tests.e2e.conftest import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("running_stack"),
    pytest.mark.filterwarnings("ignore::UserWarning"),  # pydicom, on the odd character sets
]

SETTINGS = IngestSettings()
INGEST = f"http://127.0.0.1:{SETTINGS.http_port}"
KEY = {"X-API-Key": "demo-hospital-key"}
CALLING_AET = "DEMO_PACS"  # the demo hospital's allow-listed AE title
INTAKE = (
    '{"clinical_question": "q?", "consent": true,'
    ' "referring_physician": {"name": "Dr R", "email": "r@example.org"}}'
)
SAMPLE = int(os.environ.get("SECONDREAD_FUZZ_SAMPLE", "40"))
RSS_GROWTH_KB = 150 * 1024
"""Resident memory the sample may add to ingest (it has ~250 MiB at rest; a deflate bomb
inflated whole would add 300 MiB at once)."""


def ingest_pid() -> int:
    """The pid of the ingest process serving :data:`INGEST` (``secondread status``)."""
    replicas = [s for s in stack.status(["ingest"]) if s.pid]
    chosen = [s for s in replicas if SETTINGS.http_port in s.ports] or replicas
    assert chosen and chosen[0].pid, "ingest is not running"
    return chosen[0].pid


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak resident) of ``pid``, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def healthy() -> bool:
    return httpx.get(f"{INGEST}/health", timeout=10).status_code == 200


def stored(sop_instance_uid: str) -> bool:
    with psycopg.connect(SETTINGS.db_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM instances WHERE sop_instance_uid = %s", (sop_instance_uid,)
        ).fetchone()
    return bool(row and row[0])


def expected(f: Fuzzed) -> InstanceInfo | InputRejected:
    """What ingest's own parser makes of ``f`` (the service runs the same code)."""
    try:
        return inspect_instance(f.data, "fuzz.dcm")
    except InputRejected as exc:
        return exc


def upload(name: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{INGEST}/v1/cases",
        headers=KEY,
        files=[
            ("intake", (None, INTAKE, "application/json")),
            ("files", (name, data, "application/dicom")),
        ],
        timeout=120,
    )


class Scu:
    """One association to ingest's Storage SCP, sending files as they are (never re-encoded)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ae = AE(ae_title=CALLING_AET)
        for sop_class in (dicom_fuzz.uids(0).sop_class, dicom_fuzz.BASIC_TEXT_SR):
            for syntax in dicom_fuzz.TRANSFER_SYNTAXES:  # one context each: one is accepted
                self.ae.add_requested_context(sop_class, syntax)
        self.assoc = self._associate()
        self.last = "nothing"

    def _associate(self):  # type: ignore[no-untyped-def]
        assoc = self.ae.associate("127.0.0.1", SETTINGS.dicom_port, ae_title=SETTINGS.dicom_aet)
        assert assoc.is_established, "ingest's Storage SCP refused the association"
        return assoc

    def store(self, data: bytes, what: str = "") -> tuple[int, str]:
        """The C-STORE status and ErrorComment of ``data`` (``what`` names it in a failure)."""
        path = self.folder / f"{uuid.uuid4().hex}.dcm"
        path.write_bytes(data)
        status = self.assoc.send_c_store(path)
        path.unlink()
        # Bad data never costs the sender its association: the answer is a failure status.
        assert self.assoc.is_established, f"the association was dropped after {what}"
        assert "Status" in status, f"no C-STORE response to {what}"
        self.last = what
        return int(status.Status), str(status.get("ErrorComment", ""))

    def close(self) -> None:
        self.assoc.release()


def intact_meta(f: Fuzzed) -> bool:
    """Whether a DIMSE peer could send ``f`` at all (its file meta was not cut)."""
    assert f.ids is not None
    meta = dicom_fuzz.part10([], f.ids)
    deflated = dicom_fuzz.part10(
        [], f.ids, transfer_syntax=dicom_fuzz.DeflatedExplicitVRLittleEndian
    )
    return any(len(f.data) > len(m) and f.data.startswith(m) for m in (meta, deflated))


def test_fuzzed_files_are_refused_by_name_at_both_doors_and_ingest_stays_up_and_bounded() -> None:
    configure_pydicom()
    pid = ingest_pid()
    before = memory_kb(pid)
    folder = Path(tempfile.mkdtemp(prefix="fuzz-cstore-"))
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True
    scu = Scu(folder)
    seen: Counter[str] = Counter()
    accepted: list[str] = []
    try:

        @settings(
            max_examples=SAMPLE,
            deadline=None,
            database=None,
            derandomize=os.environ.get("SECONDREAD_FUZZ_RANDOM", "") != "1",
            phases=[Phase.generate],  # no shrinking against a live service
            suppress_health_check=list(HealthCheck),
        )
        @given(f=dicom_fuzz.bad_files())
        def send(f: Fuzzed) -> None:
            outcome = expected(f)
            seen[
                f"{f.kind}:{'accepted' if isinstance(outcome, InstanceInfo) else outcome.code}"
            ] += 1
            if isinstance(outcome, InputRejected):
                r = upload("fuzz.dcm", f.data)
                assert 400 <= r.status_code < 500, (f.kind, f.note, r.status_code, r.text)
                assert healthy(), f"ingest is down after {f.kind} ({f.note})"
                assert r.json()["error"] == {"code": outcome.code, "message": outcome.message}
            if intact_meta(f):
                status, comment = scu.store(f.data, f"{f.kind} ({f.note})")
                if isinstance(outcome, InstanceInfo):
                    assert status == SUCCESS, (f.kind, f.note, hex(status), comment)
                    accepted.append(outcome.sop_instance_uid)
                else:
                    assert status == STATUS_BY_REJECTION[outcome.code], (f.note, hex(status))
                    assert comment.startswith("C-STORE: "), comment

        send()

        # A deflate bomb: 300 MiB of zeros from a few hundred kilobytes.
        bomb = dicom_fuzz.deflate_bomb(dicom_fuzz.uids(999), 300 * 1024 * 1024)
        r = upload("bomb.dcm", bomb)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "too_large"
        assert "inflates beyond" in r.json()["error"]["message"]
        status, comment = scu.store(bomb, "the deflate bomb")
        assert status == STATUS_BY_REJECTION["too_large"], hex(status)
        assert "inflates beyond" in comment
    finally:
        scu.close()
        _config.STORE_SEND_CHUNKED_DATASET = chunked

    assert healthy()
    # What the SCP accepted is stored (spool, object store, PostgreSQL), odd text and all.
    wait_for(
        "the accepted instances in PostgreSQL",
        lambda: all(stored(uid) for uid in accepted),
        timeout=90,
        every=1,
    )
    assert ingest_pid() == pid, "ingest restarted during the fuzzing"
    after = memory_kb(pid)
    growth = after["VmRSS"] - before["VmRSS"]
    peak = after["VmHWM"] - before["VmHWM"]
    print(
        f"\nfuzzed {sum(seen.values())} files ({dict(sorted(seen.items()))}); ingest pid {pid}"
        f" VmRSS {before['VmRSS']} -> {after['VmRSS']} kB ({growth:+} kB),"
        f" VmHWM {before['VmHWM']} -> {after['VmHWM']} kB ({peak:+} kB)"
    )
    assert growth < RSS_GROWTH_KB, f"ingest grew by {growth} kB"
    assert peak < RSS_GROWTH_KB, f"ingest's peak rose by {peak} kB"

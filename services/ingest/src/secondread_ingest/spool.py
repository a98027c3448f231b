"""The C-STORE write-ahead spool: the durability point of an instance received by DIMSE.

A C-STORE is answered only after its bytes are in a spool file that has been written, fsynced
and renamed into place (then the directory fsynced), so an acknowledged instance survives a
crash of the process or the machine. A worker then moves each entry to the object store and
PostgreSQL and deletes it; on start-up, whatever is left is moved first. A ``.part`` file is an
instance that was never acknowledged (the sender got no success status) and is discarded.

File names carry what the mover needs besides the bytes: the hospital and the arrival time,
``<hospital>/<arrival ns>-<random>.dcm``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from secondread_ingest.errors import SpoolError

_HOSPITAL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class SpoolEntry:
    path: Path
    hospital_id: str
    received_at: float
    """Arrival time, seconds since the epoch."""


class Spool:
    """A directory of acknowledged, not yet stored instances.

    Parameters
    ----------
    root
        The spool folder; on Kubernetes a persistent volume (see docs/ingest.md).
    fsync
        Whether to fsync each entry and its directory (keep ``True`` outside unit tests).
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync

    def open(self) -> None:
        """Create the folder and discard unacknowledged ``.part`` files."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for part in self.root.glob("*/*.part"):
                part.unlink()
        except OSError as exc:
            raise SpoolError(f"spool {self.root}: {exc.strerror}") from exc

    def write(self, hospital_id: str, data: bytes) -> SpoolEntry:
        """Durably write one instance; return its entry. Thread-safe (distinct names)."""
        if not _HOSPITAL.match(hospital_id):
            raise SpoolError("hospital id unusable as a spool folder name")
        now_ns = time.time_ns()
        folder = self.root / hospital_id
        final = folder / f"{now_ns:020d}-{uuid.uuid4().hex}.dcm"
        part = final.with_suffix(".part")
        try:
            folder.mkdir(exist_ok=True)
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(part, final)
            if self.fsync:
                dfd = os.open(folder, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        except OSError as exc:
            raise SpoolError(f"spool write failed: {exc.strerror}") from exc
        return SpoolEntry(final, hospital_id, now_ns / 1e9)

    def pending(self) -> list[SpoolEntry]:
        """Every acknowledged entry still waiting, oldest first."""
        entries = []
        for path in self.root.glob("*/*.dcm"):
            stamp = path.name.split("-", 1)[0]
            received = int(stamp) / 1e9 if stamp.isdigit() else path.stat().st_mtime
            entries.append(SpoolEntry(path, path.parent.name, received))
        return sorted(entries, key=lambda e: e.path.name)

    def read(self, entry: SpoolEntry) -> bytes:
        try:
            return entry.path.read_bytes()
        except OSError as exc:
            raise SpoolError(f"spool read failed: {exc.strerror}") from exc

    def remove(self, entry: SpoolEntry) -> None:
        try:
            entry.path.unlink(missing_ok=True)
        except OSError as exc:
            raise SpoolError(f"spool remove failed: {exc.strerror}") from exc

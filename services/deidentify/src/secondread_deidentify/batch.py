"""Batch de-identification of a folder tree: the engine behind ``secondread deid SRC DST``.

Every file under ``src`` that is DICOM Part 10 (PS3.10 7.1: a 128-byte preamble then ``DICM``)
goes through the same :class:`~secondread_deidentify.engine.Engine` as the service. Output paths
are built from pseudonymous values only, never from the source's file names (which often carry
a patient name):

- ``dst/<patient pseudonym>/<study uid>/<series uid>/<sop uid>.dcm`` for a safe instance;
- ``dst/quarantine/<sop uid>.dcm`` with ``<sop uid>.reason.txt`` for a quarantined one (headers
  de-identified, pixels untouched: review before any release).

Work is spread over a process pool (one engine per worker), since pydicom is pure Python.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from secondread_deidentify.engine import Engine, build_profile
from secondread_deidentify.errors import InvalidInstanceError
from secondread_deidentify.options import DeidOptions
from secondread_deidentify.phi import detector
from secondread_shared.dicom import configure_pydicom

QUARANTINE_DIR = "quarantine"


class Outcome(StrEnum):
    WRITTEN = "written"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    """What happened to one source file. ``detail`` never holds PHI."""

    outcome: Outcome
    output: str = ""
    detail: str = ""
    pseudonym: str = ""
    study: str = ""


@dataclass
class Summary:
    """Counts of one batch run."""

    files: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    patients: set[str] = field(default_factory=set)
    studies: set[str] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def instances(self) -> int:
        """Instances de-identified (written or quarantined)."""
        return self.outcomes[Outcome.WRITTEN] + self.outcomes[Outcome.QUARANTINED]

    @property
    def ok(self) -> bool:
        return self.outcomes[Outcome.FAILED] == 0

    def as_dict(self) -> dict[str, object]:
        rate = self.instances / self.seconds if self.seconds else 0.0
        return {
            "files": self.files,
            "written": self.outcomes[Outcome.WRITTEN],
            "quarantined": self.outcomes[Outcome.QUARANTINED],
            "skipped_not_dicom": self.outcomes[Outcome.SKIPPED],
            "failed": self.outcomes[Outcome.FAILED],
            "patients": len(self.patients),
            "studies": len(self.studies),
            "quarantine_reasons": dict(self.reasons),
            "errors": dict(self.errors),
            "seconds": round(self.seconds, 3),
            "instances_per_second": round(rate, 1),
        }


def source_files(src: Path, dst: Path) -> list[Path]:
    """Every regular file under ``src`` (any depth), except those under ``dst``."""
    dst = dst.resolve()
    out: list[Path] = []
    for root, dirs, files in os.walk(src):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() != dst)
        out.extend(here / f for f in sorted(files))
    return out


_MADE: set[Path] = set()
"""Output folders this process already created (one mkdir per folder, not per file)."""


def _write(path: Path, parts: tuple[bytes | memoryview, ...]) -> None:
    """Write ``parts`` to ``path`` through a temporary name (never a half-written file)."""
    if path.parent not in _MADE:
        path.parent.mkdir(parents=True, exist_ok=True)
        _MADE.add(path.parent)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as fh:
        fh.writelines(parts)  # header, then the pixel data straight from the bytes read
    tmp.replace(path)


def process_file(engine: Engine, path: Path, dst: Path, default_issuer: str = "") -> FileResult:
    """De-identify one file into ``dst``; never raises for a bad input file."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
            if len(head) < 132 or head[128:] != b"DICM":  # PS3.10 7.1 preamble and prefix
                return FileResult(Outcome.SKIPPED, detail="not DICOM Part 10")
            fh.seek(0)
            data = fh.read()  # one buffer for the whole file, never copied again
    except OSError as exc:
        return FileResult(Outcome.FAILED, detail=f"cannot read input: {exc.strerror}")
    try:
        result = engine.deidentify(data, default_issuer=default_issuer)
    except InvalidInstanceError as exc:
        return FileResult(Outcome.FAILED, detail=str(exc))
    except Exception as exc:  # a broken file must not stop the batch; it is counted
        return FileResult(Outcome.FAILED, detail=f"{type(exc).__name__}")
    try:
        if result.quarantine_reason:
            out = dst / QUARANTINE_DIR / f"{result.sop_instance_uid}.dcm"
            _write(out, result.parts)
            reason_file = out.with_suffix(".reason.txt")
            reason_file.write_text(result.quarantine_reason + "\n")
            return FileResult(
                Outcome.QUARANTINED,
                str(out.relative_to(dst)),
                result.quarantine_reason,
                result.pseudonym,
                result.study_instance_uid,
            )
        out = (
            dst
            / result.pseudonym
            / result.study_instance_uid
            / result.series_instance_uid
            / f"{result.sop_instance_uid}.dcm"
        )
        _write(out, result.parts)
    except OSError as exc:
        return FileResult(Outcome.FAILED, detail=f"cannot write output: {exc.strerror}")
    return FileResult(
        Outcome.WRITTEN,
        str(out.relative_to(dst)),
        pseudonym=result.pseudonym,
        study=result.study_instance_uid,
    )


# ----------------------------------------------------------------------------- worker process

_ENGINE: Engine | None = None


def _init_worker(key: bytes, options: DeidOptions) -> None:
    global _ENGINE
    _ENGINE = Engine(key, options)


def _work(args: tuple[Path, Path, str]) -> FileResult:
    assert _ENGINE is not None
    return process_file(_ENGINE, *args)


def _results(
    files: list[Path],
    dst: Path,
    key: bytes,
    options: DeidOptions,
    workers: int,
    default_issuer: str,
) -> Iterator[FileResult]:
    if workers <= 1 or len(files) < 8:
        engine = Engine(key, options)
        for path in files:
            yield process_file(engine, path, dst, default_issuer)
        return
    build_profile(options)  # resolved once here: forked workers inherit it
    detector()  # the free-text PHI detector too (its data takes 0.4 s to read)
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(key, options)
    ) as pool:
        # Small chunks: the last worker to finish waits for at most a few files.
        chunk = max(1, min(16, len(files) // (workers * 16)))
        yield from pool.map(_work, [(p, dst, default_issuer) for p in files], chunksize=chunk)


def run(
    src: Path,
    dst: Path,
    key: bytes,
    *,
    options: DeidOptions | None = None,
    workers: int | None = None,
    default_issuer: str = "",
    on_file: Callable[[int, int], None] | None = None,
) -> Summary:
    """De-identify every DICOM file under ``src`` into ``dst``.

    Parameters
    ----------
    key
        The pseudonym key; the same key as the service's links the batch output to the archive.
    workers
        Processes to use; defaults to the number of CPUs.
    on_file
        Called with (done, total) after each file, for progress display.
    """
    started = time.perf_counter()
    configure_pydicom()  # inherited by the worker processes
    files = source_files(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    summary = Summary(files=len(files))
    n_workers = workers or os.cpu_count() or 1
    for i, res in enumerate(
        _results(files, dst, key, options or DeidOptions(), n_workers, default_issuer), 1
    ):
        summary.outcomes[res.outcome] += 1
        if res.outcome is Outcome.QUARANTINED:
            summary.reasons[res.detail] += 1
        elif res.outcome is Outcome.FAILED:
            summary.errors[res.detail] += 1
        if res.pseudonym:
            summary.patients.add(res.pseudonym)
            summary.studies.add(res.study)
        if on_file is not None:
            on_file(i, len(files))
    summary.seconds = time.perf_counter() - started
    return summary

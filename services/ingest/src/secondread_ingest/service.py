"""ingest's use cases behind its doors (the HTTP API, the portal): open an uploaded case.

The routes (:mod:`secondread_ingest.api`, :mod:`secondread_ingest.portal`) parse and
authorise, then call these; completion and DICOM feeds live in :mod:`secondread_ingest.desk`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from secondread_ingest.desk import CaseDesk, raw_key
from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import InstanceInfo, IntakeForm, inspect_instance
from secondread_ingest.repository import IngestRepository
from secondread_ingest.settings import IngestSettings
from secondread_shared.events import InstanceRef
from secondread_shared.storage import ObjectStore, sha256_hex


@dataclass
class IngestDeps:
    settings: IngestSettings
    repo: IngestRepository
    store: ObjectStore
    desk: CaseDesk


UPLOAD_KEYS = uuid.UUID("6f1c3e5a-4d0b-4c1e-9a52-5ec0d0a1b7e3")
"""The namespace of case ids derived from an upload's ``Idempotency-Key``."""


def upload_case_id(hospital_id: str, key: str) -> str:
    """The case id of an upload with ``Idempotency-Key: key``: the same for every retry, so a
    retried upload (a lost answer, a dropped connection) opens its case once."""
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise InputRejected(
            "bad_idempotency_key", "Idempotency-Key must be 1 to 200 printable characters"
        )
    return str(uuid.uuid5(UPLOAD_KEYS, f"{hospital_id}\n{key}"))


async def record_upload(
    deps: IngestDeps,
    case_id: str,
    hospital_id: str,
    intake: IntakeForm,
    objects: Iterable[tuple[str, bytes]],
) -> int:
    """Validate and store every object of an upload in one pass, then record the case.

    All or nothing: each object is read once, validated and stored while the next is read
    (``upload_workers`` writes in flight, so memory holds at most that many objects); if any
    object is refused, the objects already stored are deleted and nothing is recorded.
    """
    settings = deps.settings
    seen: dict[str, str] = {}
    flags: list[str] = []
    refs: dict[str, InstanceRef] = {}
    patients: dict[str, tuple[str, str]] = {}
    reports: dict[str, str] = {}
    gate = asyncio.Semaphore(settings.upload_workers)

    async def store(info: InstanceInfo, data: bytes, digest: str) -> None:
        try:
            refs[info.sop_instance_uid] = await store_instance(deps, case_id, info, data, digest)
        finally:
            gate.release()

    try:
        async with asyncio.TaskGroup() as group:
            for name, data in objects:
                info = inspect_instance(data, name)
                first = info.sop_instance_uid not in seen
                digest = _dedupe(seen, info, data, flags)
                if not first:
                    continue
                patients.setdefault(
                    info.study_instance_uid, (info.patient_id, info.issuer_of_patient_id)
                )
                if info.report_text:
                    reports[info.sop_instance_uid] = info.report_text
                if info.report_error:
                    flags.append(f"report_unreadable:{info.report_error}")
                await gate.acquire()
                group.create_task(store(info, data, digest))
                del data
    except BaseExceptionGroup as failed:
        await _discard(deps, case_id, list(refs.values()))
        # a refusal names what is wrong with the upload: it wins over a storage failure
        errors = list(failed.exceptions)
        raise next((e for e in errors if isinstance(e, InputRejected)), errors[0]) from None
    await deps.repo.record_case(
        case_id=case_id,
        hospital_id=hospital_id,
        intake=intake.model_dump(mode="json"),
        instances=list(refs.values()),
        patients=patients,
        reports=reports,
        flags=flags,
    )
    return len(refs)


async def _discard(deps: IngestDeps, case_id: str, refs: list[InstanceRef]) -> None:
    """Remove what a refused upload had stored (best effort: an orphan object under
    ``cases/<case>/`` of a case that was never recorded harms nothing)."""
    for ref in refs:
        with contextlib.suppress(Exception):
            await deps.store.delete(ref.bucket, ref.key)


def _dedupe(seen: dict[str, str], info: InstanceInfo, data: bytes, flags: list[str]) -> str:
    """Flag a second copy of an instance that differs from the first; ``data``'s sha256."""
    digest = sha256_hex(data)
    previous = seen.setdefault(info.sop_instance_uid, digest)
    if previous != digest:
        flags.append(f"conflicting_duplicate:{info.sop_instance_uid}")
    return digest


async def store_instance(
    deps: IngestDeps, case_id: str, info: InstanceInfo, data: bytes, digest: str | None = None
) -> InstanceRef:
    """Store one instance byte for byte in the raw bucket (key by case and SOP Instance UID);
    ``digest``, its sha256 when known."""
    ref = await deps.store.put(
        deps.settings.bucket_raw,
        raw_key(case_id, info),
        data,
        content_type="application/dicom",
        sha256=digest,
    )
    return InstanceRef(
        **ref.model_dump(),
        study_instance_uid=info.study_instance_uid,
        series_instance_uid=info.series_instance_uid,
        sop_instance_uid=info.sop_instance_uid,
        sop_class_uid=info.sop_class_uid,
    )

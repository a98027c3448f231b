"""deidentify's use cases, in order, written against the ports of :mod:`.ports`.

1. :func:`deidentify_case`: de-identify every instance of a received case (current study and
   priors), archive the safe ones, quarantine the rest, keep the identities in the vault, scrub
   the intake text, then announce the case.
2. :func:`archive_late_instances`: the same for instances that arrive after the announcement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace

from secondread_deidentify.engine import DeidResult, Engine
from secondread_deidentify.ports import ArchivePort, ObjectStorePort, Publish, VaultPort
from secondread_deidentify.scrub import KnownIdentifiers, Scrubber
from secondread_deidentify.settings import DeidentifySettings
from secondread_shared.events import (
    CaseAmended,
    CaseDeidentified,
    CaseReceived,
    CaseState,
    CaseStatusChanged,
    InstanceRef,
    ObjectRef,
    QuarantinedInstance,
    Role,
)
from secondread_shared.logging import get_logger

log = get_logger(__name__)

# Jurisdictions that write an ambiguous nn/nn/yyyy month first; everywhere else, day first.
MONTH_FIRST_JURISDICTIONS = frozenset({"US", "PH", "FM", "PW", "MH"})


@dataclass
class DeidentifyDeps:
    settings: DeidentifySettings
    key: bytes
    store: ObjectStorePort
    orthanc: ArchivePort
    vault: VaultPort
    publish: Publish
    engine: Engine | None = None

    def get_engine(self) -> Engine:
        if self.engine is None:
            self.engine = Engine(self.key)
        return self.engine


def intake_identifiers(event: CaseReceived) -> KnownIdentifiers:
    """Identifiers the intake itself names (contacts), to scrub with the header ones."""
    emails = [str(event.referring_physician.email)]
    if event.patient_email:
        emails.append(str(event.patient_email))
    return KnownIdentifiers(names=(event.referring_physician.name,), emails=tuple(emails))


async def deidentify_case(event: CaseReceived, deps: DeidentifyDeps) -> None:
    """De-identify every instance (current study and priors), archive the safe ones, keep the
    identities in the vault, then announce the case with its scrubbed intake text.

    ``CaseDeidentified`` is published only after every safe instance is in Orthanc and the
    clear bucket and every quarantined one in the quarantine bucket. Re-running on a redelivered
    event writes the same objects again (deterministic UIDs and keys) and the same text (the
    scrubber is deterministic): the use case is idempotent.
    """
    log.info("case_deidentifying", instances=len(event.instances))
    archived = await _archive(event.case_id, event.hospital_id, event.instances, deps)
    results, written, quarantined, orthanc_studies = (
        archived.results,
        archived.written,
        archived.quarantined,
        archived.orthanc_studies,
    )

    by_patient = await _record_identities(event.case_id, results, deps)
    known = intake_identifiers(event)
    for r in results:
        known = known.merged(r.identity.known())

    current = [
        r for ref, r in zip(event.instances, results, strict=True) if ref.role == Role.CURRENT
    ]
    primary = (current or results)[0]
    scrubber = Scrubber(
        known,
        shift_days=primary.date_shift_days,
        dayfirst=event.jurisdiction.upper() not in MONTH_FIRST_JURISDICTIONS,
    )

    if not written:
        await deps.publish(
            CaseStatusChanged(
                case_id=event.case_id,
                producer="deidentify",
                causation_id=event.event_id,
                state=CaseState.QUARANTINED,
                detail=f"{len(quarantined)} instances quarantined for review",
            )
        )
        await deps.vault.mark_processed(event.case_id, event.event_id)
        log.warning("case_quarantined", quarantined=len(quarantined))
        return

    flags = ["quarantined_instances", "review:quarantine"] if quarantined else []
    if len(by_patient) > 1:
        flags.append("multiple_patients")
    written_results = [r for r in results if not r.quarantine_reason]
    current_written = [r for r in current if not r.quarantine_reason] or written_results
    prior_studies = {
        r.study_instance_uid
        for ref, r in zip(event.instances, results, strict=True)
        if ref.role == Role.PRIOR and not r.quarantine_reason
    }
    out = CaseDeidentified(
        case_id=event.case_id,
        producer="deidentify",
        causation_id=event.event_id,
        patient_pseudonym=primary.pseudonym,
        hospital_id=event.hospital_id,
        urgency=event.urgency,
        jurisdiction=event.jurisdiction,
        # The detector takes tens of milliseconds a text: off the event loop.
        clinical_question=await asyncio.to_thread(scrubber.scrub, event.clinical_question),
        original_report=await asyncio.to_thread(scrubber.scrub, event.original_report),
        study_instance_uids=sorted({r.study_instance_uid for r in written_results}),
        prior_study_instance_uids=sorted(prior_studies),
        orthanc_study_ids=sorted(orthanc_studies),
        modalities=sorted({r.modality for r in written_results if r.modality}),
        body_parts=sorted({r.body_part for r in written_results if r.body_part}),
        instances=written,
        quarantined=quarantined,
        flags=flags,
        deidentification_method=primary.options,
        study_descriptions=_distinct(r.study_description for r in current_written),
        series_descriptions=_distinct(r.series_description for r in current_written),
        procedure_codes=_distinct(c for r in current_written for c in r.procedure_codes),
        patient_age=next((r.patient_age for r in current_written if r.patient_age), ""),
    )
    await deps.publish(out)
    await deps.publish(
        CaseStatusChanged(
            case_id=event.case_id,
            producer="deidentify",
            causation_id=out.event_id,
            state=CaseState.DEIDENTIFIED,
            detail=f"{len(written)} instances archived, {len(quarantined)} quarantined for review",
        )
    )
    await deps.vault.mark_processed(event.case_id, event.event_id)
    log.info(
        "case_deidentified",
        pseudonym=out.patient_pseudonym,
        instances=len(written),
        quarantined=len(quarantined),
    )


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


@dataclass
class _Archived:
    results: list[DeidResult]
    """One per instance, in order, without the instance bytes (see :func:`_archive`)."""
    written: list[ObjectRef]
    quarantined: list[QuarantinedInstance]
    orthanc_studies: set[str]


async def _archive(
    case_id: str, hospital_id: str, instances: list[InstanceRef], deps: DeidentifyDeps
) -> _Archived:
    """De-identify ``instances``; write each safe one to Orthanc and the clear bucket and each
    unsafe one (as received) to the quarantine bucket.

    ``archive_workers`` instances are in flight at once: while one is de-identified (one at a
    time: it is CPU work under the GIL), the others are read from the raw bucket or written to
    the archive and the clear bucket (an instance's two writes at once), so the writes run in
    parallel. Memory holds at most that many instances whatever the study's size: the results
    kept for the announcement carry no pixel data or header bytes. The results keep the order
    of ``instances``.
    """
    settings = deps.settings
    engine = deps.get_engine()
    slots: list[_Slot | None] = [None] * len(instances)
    gate = asyncio.Semaphore(settings.archive_workers)
    cpu = asyncio.Lock()

    async def one(i: int, ref: InstanceRef) -> None:
        async with gate:
            raw = await deps.store.get_verified(ref)
            async with cpu:
                result = await asyncio.to_thread(engine.deidentify, raw, default_issuer=hospital_id)
            if result.quarantine_reason:
                await deps.store.put(
                    settings.bucket_quarantine,
                    f"cases/{case_id}/{result.sop_instance_uid}.dcm",
                    raw,
                    content_type="application/dicom",
                )
                reason = QuarantinedInstance(
                    sop_instance_uid=result.sop_instance_uid, reason=result.quarantine_reason
                )
                slots[i] = _Slot(replace(result, parts=()), quarantined=reason)
                return
            del raw
            data = result.data
            async with asyncio.TaskGroup() as writes:  # both writes at once
                stored = writes.create_task(deps.orthanc.store_instance(data))
                written = writes.create_task(
                    deps.store.put(
                        settings.bucket_clear,
                        f"studies/{result.pseudonym}/{result.study_instance_uid}/"
                        f"{result.sop_instance_uid}.dcm",
                        data,
                        content_type="application/dicom",
                    )
                )
            slots[i] = _Slot(
                replace(result, parts=()),
                written=written.result(),
                study_id=stored.result().study_id,
            )

    try:
        async with asyncio.TaskGroup() as group:
            for i, ref in enumerate(instances):
                group.create_task(one(i, ref))
    except ExceptionGroup as failed:  # the first failure decides (retry or dead letter)
        raise _first(failed) from None
    archived = _Archived([], [], [], set())
    for slot in slots:
        assert slot is not None
        archived.results.append(slot.result)
        if slot.quarantined is not None:
            archived.quarantined.append(slot.quarantined)
        if slot.written is not None:
            archived.written.append(slot.written)
            archived.orthanc_studies.add(slot.study_id)
    return archived


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    """The first failure in ``group``, through the nested groups (an instance's two writes)."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


@dataclass(frozen=True)
class _Slot:
    """One instance's outcome, kept (without its bytes) for the announcement."""

    result: DeidResult
    written: ObjectRef | None = None
    quarantined: QuarantinedInstance | None = None
    study_id: str = ""


async def _record_identities(
    case_id: str, results: list[DeidResult], deps: DeidentifyDeps
) -> dict[str, list[DeidResult]]:
    """Keep each patient's identity and study mapping in the vault; results by pseudonym."""
    by_patient: dict[str, list[DeidResult]] = {}
    for r in results:
        by_patient.setdefault(r.pseudonym, []).append(r)
    for pseudonym, rs in by_patient.items():
        studies = {r.original_study_instance_uid: r.study_instance_uid for r in rs}
        await deps.vault.record(case_id, pseudonym, rs[0].identity, studies)
    return by_patient


async def archive_late_instances(event: CaseAmended, deps: DeidentifyDeps) -> None:
    """Archive instances that arrived after the case was announced, beside its study.

    Pseudonyms and UIDs are deterministic, so a late instance lands in the same archived study
    the reader already has. No status is published: the case's state (perhaps already assigned
    or signed) does not go back; a quarantined late instance is logged for review.
    """
    archived = await _archive(event.case_id, event.hospital_id, event.instances, deps)
    await _record_identities(event.case_id, archived.results, deps)
    log.info(
        "case_amended",
        instances=len(archived.written),
        quarantined=len(archived.quarantined),
    )

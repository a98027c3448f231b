"""deidentify's handlers: thin functions of (event, dependencies)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from secondread_deidentify.engine import DeidResult, deidentify
from secondread_deidentify.scrub import scrub_text
from secondread_deidentify.settings import DeidentifySettings
from secondread_deidentify.vault import Vault
from secondread_shared.events import (
    CaseDeidentified,
    CaseReceived,
    CaseState,
    CaseStatusChanged,
    Event,
    ObjectRef,
    QuarantinedInstance,
)
from secondread_shared.logging import get_logger
from secondread_shared.orthanc import OrthancClient
from secondread_shared.storage import ObjectStore

log = get_logger(__name__)

Publish = Callable[[Event], Awaitable[None]]


@dataclass
class DeidentifyDeps:
    settings: DeidentifySettings
    key: bytes
    store: ObjectStore
    orthanc: OrthancClient
    vault: Vault
    publish: Publish


async def case_received(event: CaseReceived, deps: DeidentifyDeps) -> None:
    """De-identify every instance, archive the safe ones, then announce the case.

    Re-running on a redelivered event writes the same objects again (deterministic UIDs and
    keys), so the handler is idempotent.
    """
    settings = deps.settings
    results: list[DeidResult] = []
    for ref in event.instances:
        raw = await deps.store.get_verified(ref)
        results.append(await asyncio.to_thread(deidentify, raw, deps.key))

    quarantined: list[QuarantinedInstance] = []
    written: list[ObjectRef] = []
    orthanc_studies: set[str] = set()
    for ref, result in zip(event.instances, results, strict=True):
        if result.quarantine_reason:
            await deps.store.put(
                settings.bucket_quarantine,
                f"cases/{event.case_id}/{ref.sop_instance_uid}.dcm",
                await deps.store.get_verified(ref),
                content_type="application/dicom",
            )
            quarantined.append(
                QuarantinedInstance(
                    sop_instance_uid=result.sop_instance_uid, reason=result.quarantine_reason
                )
            )
            continue
        stored = await deps.orthanc.store_instance(result.data)
        orthanc_studies.add(stored.study_id)
        written.append(
            await deps.store.put(
                settings.bucket_clear,
                f"studies/{result.pseudonym}/{result.study_instance_uid}/"
                f"{result.sop_instance_uid}.dcm",
                result.data,
                content_type="application/dicom",
            )
        )

    identifiers: list[str] = [event.referring_physician.name]
    if event.patient_email:
        identifiers.append(str(event.patient_email))
    for result in results:
        await deps.vault.record(event.case_id, result.pseudonym, result.identity)
        identifiers.extend(result.identity.identifiers())
    pseudonyms = sorted({r.pseudonym for r in results})

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

    flags = ["quarantined_instances"] if quarantined else []
    if len(pseudonyms) > 1:
        flags.append("multiple_patients")
    out = CaseDeidentified(
        case_id=event.case_id,
        producer="deidentify",
        causation_id=event.event_id,
        patient_pseudonym=pseudonyms[0],
        hospital_id=event.hospital_id,
        urgency=event.urgency,
        jurisdiction=event.jurisdiction,
        clinical_question=scrub_text(event.clinical_question, identifiers),
        original_report=scrub_text(event.original_report, identifiers),
        study_instance_uids=sorted(
            {r.study_instance_uid for r in results if not r.quarantine_reason}
        ),
        orthanc_study_ids=sorted(orthanc_studies),
        modalities=sorted({r.modality for r in results if r.modality}),
        body_parts=sorted({r.body_part for r in results if r.body_part}),
        instances=written,
        quarantined=quarantined,
        flags=flags,
    )
    await deps.publish(out)
    await deps.publish(
        CaseStatusChanged(
            case_id=event.case_id,
            producer="deidentify",
            causation_id=out.event_id,
            state=CaseState.DEIDENTIFIED,
            detail=f"{len(written)} instances archived, {len(quarantined)} quarantined",
        )
    )
    await deps.vault.mark_processed(event.case_id, event.event_id)
    log.info(
        "case_deidentified",
        pseudonym=out.patient_pseudonym,
        instances=len(written),
        quarantined=len(quarantined),
    )

"""The case.received handler with small fakes: archive, quarantine, vault, then publish."""

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

import pydicom
import pytest

from secondread_deidentify.handlers import DeidentifyDeps, case_amended, case_received
from secondread_deidentify.settings import DeidentifySettings
from secondread_shared.errors import OrthancError
from secondread_shared.events import (
    CaseAmended,
    CaseDeidentified,
    CaseReceived,
    CaseStatusChanged,
    Contact,
    Event,
    InstanceRef,
    ObjectRef,
    Role,
)
from secondread_shared.orthanc import StoredInstance
from tests.deid_corpus import planted_instance
from tests.synthetic import Patient, ct_study

KEY = b"k" * 32


@dataclass
class FakeStore:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    async def get_verified(self, ref: ObjectRef) -> bytes:
        return self.objects[(ref.bucket, ref.key)]

    async def put(self, bucket: str, key: str, data: bytes, *, content_type: str = "") -> ObjectRef:
        self.objects[(bucket, key)] = data
        self.log.append(f"put {bucket}")
        return ObjectRef(
            bucket=bucket, key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data)
        )


@dataclass
class FakeOrthanc:
    stored: list[bytes] = field(default_factory=list)
    log: list[str] | None = None

    async def store_instance(self, data: bytes) -> StoredInstance:
        self.stored.append(data)
        if self.log is not None:
            self.log.append("orthanc")
        study = str(pydicom.dcmread(io.BytesIO(data)).StudyInstanceUID)
        return StoredInstance(
            instance_id=str(len(self.stored)), study_id="o-" + study[-6:], status="Success"
        )


@dataclass
class FakeVault:
    records: dict[tuple[str, str], Any] = field(default_factory=dict)
    processed: list[str] = field(default_factory=list)

    async def record(
        self, case_id: str, pseudonym: str, identity: Any, studies: Any = None
    ) -> None:
        self.records[(case_id, pseudonym)] = (identity, studies)

    async def mark_processed(self, case_id: str, event_id: str) -> None:
        self.processed.append(case_id)


def make_case(store: FakeStore, instances: list[tuple[bytes, Role]], **kw: Any) -> CaseReceived:
    refs = []
    for i, (data, role) in enumerate(instances):
        ds = pydicom.dcmread(io.BytesIO(data))
        store.objects[("secondread-phi-raw", f"raw/{i}")] = data
        refs.append(
            InstanceRef(
                bucket="secondread-phi-raw",
                key=f"raw/{i}",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                study_instance_uid=str(ds.StudyInstanceUID),
                series_instance_uid=str(ds.SeriesInstanceUID),
                sop_instance_uid=str(ds.SOPInstanceUID),
                sop_class_uid=str(ds.SOPClassUID),
                role=role,
            )
        )
    fields = dict(
        case_id="case-1",
        producer="ingest",
        hospital_id="demo-hospital",
        clinical_question="Alonso Quixote MRN-4242-7781, seen 2026-01-02: nodule?",
        original_report="QUIXOTE, ALONSO born 15/03/1961, phone +34-555-0100. Dr Referrer.",
        referring_physician=Contact(name="Dr Referrer", email="referrer@example.org"),
        jurisdiction="ES",
        consent=True,
        instances=refs,
    )
    fields.update(kw)
    return CaseReceived(**fields)


def deps_for(
    store: FakeStore, published: list[Event], log: list[str]
) -> tuple[DeidentifyDeps, FakeVault]:
    vault = FakeVault()

    async def publish(event: Event) -> None:
        log.append(f"publish {event.event_type}")
        published.append(event)

    deps = DeidentifyDeps(
        settings=DeidentifySettings(),
        key=KEY,
        store=store,
        orthanc=FakeOrthanc(log=log),
        vault=vault,
        publish=publish,
    )
    return deps, vault


async def test_case_is_published_after_every_write_with_scrubbed_text_and_quarantine() -> None:
    patient = Patient()
    store = FakeStore()
    log: list[str] = store.log
    current = [(d, Role.CURRENT) for d in ct_study(patient, count=3, size=8, seed="cur")]
    prior = [(d, Role.PRIOR) for d in ct_study(patient, count=2, size=8, seed="old")]
    us = planted_instance(patient, modality="US", sop_class="1.2.840.10008.5.1.4.1.1.6.1")
    event = make_case(store, [*current, *prior, (us.data, Role.CURRENT)])
    published: list[Event] = []
    deps, vault = deps_for(store, published, log)

    await case_received(event, deps)

    first_publish = log.index("publish case.deidentified")
    assert log[:first_publish].count("orthanc") == 5
    assert log[:first_publish].count("put secondread-clear") == 5
    assert log[:first_publish].count("put secondread-phi-quarantine") == 1
    out = next(e for e in published if isinstance(e, CaseDeidentified))
    assert len(out.instances) == 5 and len(out.quarantined) == 1
    assert "US" in out.quarantined[0].reason
    assert "review:quarantine" in out.flags
    assert len(out.study_instance_uids) == 2 and len(out.prior_study_instance_uids) == 1
    assert out.deidentification_method[0] == "Basic Application Confidentiality Profile"
    text = (out.clinical_question + out.original_report).lower()
    for value in ("quixote", "alonso", "mrn-4242-7781", "1961", "555", "referrer", "2026-01-02"):
        assert value not in text, value
    assert "[birthdate]" in text and "nodule" in text
    status = [e for e in published if isinstance(e, CaseStatusChanged)]
    assert status[-1].state == "deidentified"
    # the planted US instance names another issuer: a second patient namespace, flagged
    assert "multiple_patients" in out.flags
    assert vault.processed == ["case-1"] and len(vault.records) == 2


async def test_a_case_with_only_quarantined_instances_is_not_passed_on() -> None:
    store = FakeStore()
    us = planted_instance(Patient(), burned_in="YES")
    event = make_case(store, [(us.data, Role.CURRENT)])
    published: list[Event] = []
    deps, _ = deps_for(store, published, store.log)
    await case_received(event, deps)
    assert not [e for e in published if isinstance(e, CaseDeidentified)]
    assert [e.state for e in published if isinstance(e, CaseStatusChanged)] == ["quarantined"]


async def test_a_late_instance_joins_the_archived_study_without_a_status_change() -> None:
    patient = Patient()
    store = FakeStore()
    study = ct_study(patient, count=3, size=8, seed="cur")
    event = make_case(store, [(d, Role.CURRENT) for d in study[:2]])
    published: list[Event] = []
    deps, vault = deps_for(store, published, store.log)
    await case_received(event, deps)
    archived = next(e for e in published if isinstance(e, CaseDeidentified))

    late = make_case(store, [(study[2], Role.CURRENT)])
    amended = CaseAmended(
        case_id="case-1",
        producer="ingest",
        causation_id=event.event_id,
        hospital_id=event.hospital_id,
        instances=late.instances,
    )
    published.clear()
    await case_amended(amended, deps)

    assert published == []  # the case's state does not go back
    orthanc = deps.orthanc
    assert len(orthanc.stored) == 3  # type: ignore[attr-defined]
    late_ds = pydicom.dcmread(io.BytesIO(orthanc.stored[-1]))  # type: ignore[attr-defined]
    assert str(late_ds.StudyInstanceUID) == archived.study_instance_uids[0]
    assert str(late_ds.PatientID) == archived.patient_pseudonym
    assert ("case-1", archived.patient_pseudonym) in vault.records


async def test_an_archive_outage_comes_out_as_the_transient_error_itself() -> None:
    """The broker retries a TransientError: it must come out as itself, not inside the
    (nested) exception groups of the parallel writes."""

    class Down(FakeOrthanc):
        async def store_instance(self, data: bytes) -> StoredInstance:
            if len(self.stored) >= 3:
                raise OrthancError("archive down")
            return await super().store_instance(data)

    store, published, log = FakeStore(), [], []
    case = make_case(store, [(d, Role.CURRENT) for d in ct_study(Patient(), count=8, size=8)])
    deps, vault = deps_for(store, published, log)
    deps.orthanc = Down()
    with pytest.raises(OrthancError, match="archive down"):
        await case_received(case, deps)
    assert published == [] and vault.processed == []

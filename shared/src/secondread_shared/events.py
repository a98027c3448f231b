"""Event contracts: one pydantic model per topic, each with the common envelope.

Rules (ARCHITECTURE.md, "Contracts"):

- adding an optional field keeps the version; any other change makes a ``.v2`` topic;
- images never travel in Kafka: events carry object keys and sha256 digests (claim-check);
- the Kafka message key is the case id;
- events on clear-zone topics carry pseudonyms only, never PHI.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from secondread_shared import topics


def _now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random identifier (UUID4, hex with dashes)."""
    return str(uuid.uuid4())


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"


class Event(BaseModel):
    """The envelope every event carries.

    ``event_id`` is unique per publication and is what consumers deduplicate on;
    ``causation_id`` is the ``event_id`` of the event that caused this one.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    TOPIC: ClassVar[str]

    event_id: str = Field(default_factory=new_id)
    event_type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=_now)
    case_id: str
    causation_id: str | None = None
    producer: str


class ObjectRef(BaseModel):
    """A stored object: where it is and its digest."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    sha256: Sha256
    size: int = Field(ge=0)


class Role(StrEnum):
    CURRENT = "current"
    PRIOR = "prior"


class InstanceRef(ObjectRef):
    """A stored DICOM instance."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    role: Role = Role.CURRENT


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    email: EmailStr


# --------------------------------------------------------------------------- PHI zone


class CaseReceived(Event):
    """ingest -> deidentify (and notify, for delivery contacts). PHI: ``secondread.phi.*``."""

    TOPIC: ClassVar[str] = topics.CASE_RECEIVED
    event_type: Literal["case.received"] = "case.received"

    hospital_id: str
    urgency: Urgency = Urgency.ROUTINE
    clinical_question: str
    original_report: str
    referring_physician: Contact
    patient_email: EmailStr | None = None
    jurisdiction: str
    consent: bool
    patient_delivery_consent: bool = False
    """The patient consents to receiving the report at ``patient_email`` themselves."""
    delivery_channels: list[str] | None = None
    """The kinds of the hospital's delivery channels to use for this case; ``None``: all."""
    instances: list[InstanceRef] = Field(min_length=1)
    flags: list[str] = Field(default_factory=list)


class CaseAmended(Event):
    """ingest -> deidentify: instances that arrived after the case was announced.

    Published on its own PHI topic (``secondread.phi.case.amended.v1``), so that consumers of
    ``case.received`` are unaffected. ``causation_id`` is the ``event_id`` of the case's
    ``case.received``. A late instance never opens a second case and is never dropped.
    """

    TOPIC: ClassVar[str] = topics.CASE_AMENDED
    event_type: Literal["case.amended"] = "case.amended"

    hospital_id: str
    reason: str = "late_instances"
    instances: list[InstanceRef] = Field(default_factory=list)
    """The instances added since the last announcement (current or prior)."""
    flags: list[str] = Field(default_factory=list)
    """New flags, for example ``conflicting_duplicate:<SOPInstanceUID>``."""


# --------------------------------------------------------------------------- clear zone


class QuarantinedInstance(BaseModel):
    model_config = ConfigDict(frozen=True)

    sop_instance_uid: str
    """The pseudonymous (remapped) SOP Instance UID."""
    reason: str


class CaseDeidentified(Event):
    """deidentify -> routing. Clear zone: pseudonyms only."""

    TOPIC: ClassVar[str] = topics.CASE_DEIDENTIFIED
    event_type: Literal["case.deidentified"] = "case.deidentified"

    patient_pseudonym: str
    hospital_id: str = ""
    urgency: Urgency
    jurisdiction: str
    clinical_question: str
    """Scrubbed of every identifier known from headers and intake."""
    original_report: str
    """Scrubbed of every identifier known from headers and intake."""
    study_instance_uids: list[str]
    orthanc_study_ids: list[str]
    modalities: list[str] = Field(default_factory=list)
    body_parts: list[str] = Field(default_factory=list)
    instances: list[ObjectRef] = Field(default_factory=list)
    quarantined: list[QuarantinedInstance] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    prior_study_instance_uids: list[str] = Field(default_factory=list)
    """The pseudonymous studies of ``study_instance_uids`` that the intake sent as priors."""
    deidentification_method: list[str] = Field(default_factory=list)
    """The PS3.15 profile and options applied (CID 7050 code meanings)."""
    study_descriptions: list[str] = Field(default_factory=list)
    """Study Description of the current studies, as cleaned (for subspecialty rules)."""
    series_descriptions: list[str] = Field(default_factory=list)
    """Series Descriptions of the current studies, as cleaned."""
    procedure_codes: list[str] = Field(default_factory=list)
    """Code Meanings of the (Requested) Procedure Code Sequences of the current studies."""
    patient_age: str = ""
    """DICOM AS of the current study (``045Y``, ``006M``); empty when not sent."""


class PriorStudy(BaseModel):
    """An earlier study of the same pseudonymous patient in the archive, ranked by relevance."""

    model_config = ConfigDict(frozen=True)

    orthanc_study_id: str
    study_instance_uid: str
    study_date: str = ""
    """DICOM DA, shifted like every date of this patient."""
    description: str = ""
    modalities: list[str] = Field(default_factory=list)
    body_parts: list[str] = Field(default_factory=list)
    score: float = 0.0
    reasons: list[str] = Field(default_factory=list)


class EarlierOpinion(BaseModel):
    """A signed second opinion of an earlier case of the same pseudonymous patient."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    report_id: str
    radiologist_id: str
    signed_at: datetime
    assessment: str = ""
    subspecialty: str = ""


class Priority(StrEnum):
    """The order of work: urgency, raised one level by a triage flag configured to do so."""

    ROUTINE = "routine"
    HIGH = "high"
    URGENT = "urgent"


class CaseAssigned(Event):
    """routing -> reporting. A reassignment (decline, accept timeout) is a new ``case.assigned``
    of the same case to another reader."""

    TOPIC: ClassVar[str] = topics.CASE_ASSIGNED
    event_type: Literal["case.assigned"] = "case.assigned"

    radiologist_id: str
    subspecialty: str
    urgency: Urgency
    due_at: datetime
    patient_pseudonym: str
    clinical_question: str
    original_report: str
    study_instance_uids: list[str]
    orthanc_study_ids: list[str]
    flags: list[str] = Field(default_factory=list)
    priors: list[PriorStudy] = Field(default_factory=list)
    """Earlier studies of the patient in the archive, most relevant first."""
    priority: Priority = Priority.ROUTINE
    rule: str = ""
    """The id of the subspecialty rule that matched (``general`` when none did)."""
    radiologist_name: str = ""
    """The reader's display name, for the report's signature block."""
    radiologist_credentials: str = ""
    radiologist_certifications: list[str] = Field(default_factory=list)
    """The reader's board certifications (roster), for the signature block."""
    radiologist_licence: str = ""
    """The reader's licence that covers the case's jurisdiction (roster), e.g. ``US-NY``."""
    accept_by: datetime | None = None
    """When the assignment is reassigned unless the reader has accepted it."""
    earlier_opinions: list[EarlierOpinion] = Field(default_factory=list)
    """Signed second opinions of the patient's earlier cases, newest first."""


class ReportSigned(Event):
    """reporting -> notify. The signed canonical form travels by claim-check."""

    TOPIC: ClassVar[str] = topics.REPORT_SIGNED
    event_type: Literal["report.signed"] = "report.signed"

    report_id: str
    radiologist_id: str
    signed_at: datetime
    algorithm: Literal["Ed25519"] = "Ed25519"
    key_id: str
    signature: str
    """Base64 of the signature over the canonical form's bytes."""
    report: ObjectRef
    """The canonical signed report (JSON) in the reports bucket."""
    assessment: str
    pdf: ObjectRef | None = None
    """The report as PDF, in the reports bucket."""
    fhir: ObjectRef | None = None
    """The report as a FHIR R4B DiagnosticReport (JSON), in the reports bucket."""
    archive_instance_id: str = ""
    """The Orthanc id of the Encapsulated PDF instance stored beside the study."""
    kind: Literal["report", "addendum"] = "report"
    amends: str | None = None
    """For an addendum: the id of the report it amends."""


class NotificationDelivered(Event):
    TOPIC: ClassVar[str] = topics.NOTIFICATION_DELIVERED
    event_type: Literal["notification.delivered"] = "notification.delivered"

    report_id: str
    channel: Literal["email", "webhook", "fhir", "dicom"]
    recipient_role: Literal["physician", "patient"]
    delivery_id: str
    attempts: int = Field(ge=1)


class NotificationFailed(Event):
    TOPIC: ClassVar[str] = topics.NOTIFICATION_FAILED
    event_type: Literal["notification.failed"] = "notification.failed"

    report_id: str
    channel: Literal["email", "webhook", "fhir", "dicom"]
    recipient_role: Literal["physician", "patient"]
    reason: str
    attempts: int = Field(ge=1)


class CaseAccepted(Event):
    """reporting -> routing: the assigned reader takes the case (stops the accept timer)."""

    TOPIC: ClassVar[str] = topics.CASE_ACCEPTED
    event_type: Literal["case.accepted"] = "case.accepted"

    radiologist_id: str


class CaseDeclined(Event):
    """reporting -> routing: the assigned reader gives the case back; routing reassigns it."""

    TOPIC: ClassVar[str] = topics.CASE_DECLINED
    event_type: Literal["case.declined"] = "case.declined"

    radiologist_id: str
    reason: str = ""


class RosterChanged(Event):
    """``secondread roster import`` -> routing: readers changed, retry waiting cases.

    Not about one case: ``case_id`` (the message key) is the constant ``roster``.
    """

    TOPIC: ClassVar[str] = topics.ROSTER_CHANGED
    event_type: Literal["roster.changed"] = "roster.changed"

    case_id: str = "roster"
    readers: list[str] = Field(default_factory=list)
    """The ids of the readers added, changed or removed."""


class CaseState(StrEnum):
    RECEIVED = "received"
    DEIDENTIFIED = "deidentified"
    QUARANTINED = "quarantined"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    SIGNED = "signed"
    NOTIFIED = "notified"
    NOTIFICATION_FAILED = "notification_failed"
    DEAD_LETTERED = "dead_lettered"


class CaseStatusChanged(Event):
    """Every service -> dashboards. Compacted, keyed by case id: the last value is the state."""

    TOPIC: ClassVar[str] = topics.CASE_STATUS
    event_type: Literal["case.status"] = "case.status"

    state: CaseState
    detail: str = ""


ALL_EVENTS: tuple[type[Event], ...] = (
    CaseReceived,
    CaseAmended,
    CaseDeidentified,
    CaseAssigned,
    ReportSigned,
    NotificationDelivered,
    NotificationFailed,
    CaseStatusChanged,
    CaseAccepted,
    CaseDeclined,
    RosterChanged,
)

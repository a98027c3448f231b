"""The upload portal's use cases: links, the case form, the resumable upload, the status.

1. A hospital admin (in the portal) or an operator (``secondread link create``) creates an
   upload link for a hospital: :meth:`PortalService.create_link`.
2. The person holding the link sends the case form with what the browser read from the DICOM
   headers and the size of the upload: :meth:`PortalService.submit_form` validates the form with
   ingest's :class:`~secondread_ingest.intake.IntakeForm` (the same rules as ``POST /v1/cases``),
   records it and gives a status capability.
3. The browser uploads one zip of the study with tus; when every byte has arrived
   (:meth:`PortalService.upload_finished`, or found by :meth:`PortalService.adopt_finished`), one
   replica claims the submission and opens the case through ingest's upload use case, exactly as
   ``POST /v1/cases`` does (:meth:`PortalService.open_next_case`).
4. The status page reads :meth:`PortalService.status`: what the uploader entered, the upload's
   progress, and the case's state (ingest's own record, then ``secondread.case.status.v1``),
   never a pseudonym or anything the pipeline derived.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from pydantic import ValidationError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from secondread_ingest import links
from secondread_ingest.errors import InputRejected
from secondread_ingest.intake import IntakeForm
from secondread_ingest.links import LinkClaims, LinkError
from secondread_ingest.portal_repository import (
    LinkUnusable,
    PortalRepository,
    SubmissionRow,
    SubmissionState,
)
from secondread_shared.events import CaseState, new_id
from secondread_shared.logging import bind_case, get_logger, unbind_case

log = get_logger(__name__)

PORTAL_FIELDS = (
    "clinical_question",
    "original_report",
    "urgency",
    "referring_physician",
    "patient_email",
    "jurisdiction",
    "consent",
    "patient_delivery_consent",
)
"""The intake fields the portal's form sends (the DICOM-feed fields are not offered)."""
MAX_REPORT_PDF = 20 * 1024 * 1024
OPEN_LEASE_S = 900.0
"""How long a replica may take to open a case before another one may try again."""


class FormInvalid(InputRejected):
    """The case form has errors; ``fields`` maps each field (dotted path) to its message."""

    def __init__(self, fields: dict[str, str]) -> None:
        message = "intake: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        super().__init__("bad_intake", message)
        self.fields = fields


class CaseOpener(Protocol):
    """ingest's upload use case (``POST /v1/cases``): record a case from a zip, announce it."""

    async def open_from_zip(
        self, *, case_id: str, hospital_id: str, intake: IntakeForm, zip_file: IO[bytes]
    ) -> int: ...

    async def case_exists(self, case_id: str) -> bool: ...

    async def case_status(self, case_id: str) -> str | None: ...


class UploadBytes(Protocol):
    """The tus uploads' bytes (:class:`secondread_ingest.tus.SharedUploadStore`)."""

    async def copy_to(self, uid: str, out: IO[bytes]) -> int: ...

    async def delete(self, uid: str) -> None: ...


@dataclass(frozen=True)
class CreatedLink:
    link_id: str
    hospital_id: str
    url: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class OpenLink:
    claims: LinkClaims
    usable: bool
    reason: str = ""
    code: str = ""


@dataclass(frozen=True)
class Submitted:
    submission_id: str
    status_token: str


def validate_intake(data: object) -> IntakeForm:
    """The portal's form as an :class:`IntakeForm`, or :class:`FormInvalid` naming each field.

    The rules are ingest's (the model, and the consent rule of ``POST /v1/cases``); the portal
    adds that the physician's name is required and that only its own fields are sent.
    """
    if not isinstance(data, dict):
        raise FormInvalid({"intake": "the form must be a JSON object"})
    problems: dict[str, str] = {}
    for key in data:
        if key not in PORTAL_FIELDS:
            problems[str(key)] = "not a field of the upload portal's form"
    physician = data.get("referring_physician")
    if isinstance(physician, dict):
        for key, what in (("name", "name"), ("email", "email address")):
            if not str(physician.get(key, "") or "").strip():
                problems[f"referring_physician.{key}"] = f"the physician's {what} is required"
    intake: IntakeForm | None = None
    try:
        intake = IntakeForm.model_validate({k: v for k, v in data.items() if k in PORTAL_FIELDS})
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if not loc:  # a rule across fields
                loc = "patient_email" if "patient_email" in err["msg"] else "intake"
            problems.setdefault(loc, _human(err))
    if data.get("consent") is not True:
        problems["consent"] = "a case is processed only with the patient's consent"
    if problems or intake is None:
        raise FormInvalid(dict(sorted(problems.items(), key=lambda kv: _form_position(kv[0]))))
    return intake


def _form_position(field: str) -> int:
    """Where a field sits on the portal's form (error lists follow the form's order)."""
    on_form = [
        "clinical_question",
        "original_report",
        "urgency",
        "referring_physician",
        "referring_physician.name",
        "referring_physician.email",
        "patient_email",
        "patient_delivery_consent",
        "consent",
        "jurisdiction",
    ]
    return on_form.index(field) if field in on_form else len(on_form)


def _human(err: Any) -> str:
    kind = str(err.get("type", ""))
    if kind == "missing":
        return "required"
    if kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        return "required"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def report_text_from_pdf(data: bytes) -> str:
    """The text layer of the original report's PDF (:class:`FormInvalid` when it has none)."""
    field = "original_report_pdf"
    if len(data) > MAX_REPORT_PDF:
        raise FormInvalid({field: f"the PDF is larger than {MAX_REPORT_PDF // 1024**2} MB"})
    if not data.startswith(b"%PDF"):
        raise FormInvalid({field: "this file is not a PDF"})
    try:
        reader = PdfReader(io.BytesIO(data))
        text = "\n".join((page.extract_text() or "") for page in reader.pages).strip()
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FormInvalid({field: "the PDF cannot be read"}) from exc
    if not text:
        raise FormInvalid(
            {field: "the PDF has no text layer (a scan?): paste the report's text instead"}
        )
    return text


def _summary(data: object) -> dict[str, Any]:
    """What the browser counted in the DICOM headers (numbers and modalities only)."""
    if not isinstance(data, dict):
        raise FormInvalid({"summary": "the file summary is missing"})
    out: dict[str, Any] = {}
    for key in ("instances", "series", "studies", "not_dicom"):
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FormInvalid({f"summary.{key}": "must be a whole number"})
        out[key] = value
    if out["instances"] < 1:
        raise FormInvalid({"files": "choose at least one DICOM file"})
    modalities = data.get("modalities", [])
    if not isinstance(modalities, list) or not all(
        isinstance(m, str) and 0 < len(m) <= 16 for m in modalities
    ):
        raise FormInvalid({"summary.modalities": "must be a list of modality codes"})
    out["modalities"] = sorted(set(modalities))[:16]
    return out


# The three steps the status page shows, from the case's last state. An unknown state (the
# status topic may gain states within v1) keeps the case at its last known step.
STEP_BY_STATE: dict[str, str] = {
    CaseState.RECEIVED.value: "received",
    CaseState.DEIDENTIFIED.value: "received",
    CaseState.QUARANTINED.value: "received",
    CaseState.UNASSIGNED.value: "received",
    CaseState.DEAD_LETTERED.value: "received",
    CaseState.ASSIGNED.value: "in_review",
    CaseState.SIGNED.value: "in_review",
    CaseState.NOTIFICATION_FAILED.value: "in_review",
    CaseState.NOTIFIED.value: "delivered",
}
HELD_STATES = {
    CaseState.QUARANTINED.value,
    CaseState.DEAD_LETTERED.value,
    CaseState.NOTIFICATION_FAILED.value,
}


class LinkService:
    """Upload links: made by a hospital admin or an operator, checked on every use."""

    def __init__(
        self,
        *,
        repo: PortalRepository,
        key: bytes,
        hospitals: Callable[[], set[str]],
        public_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.key = key
        self.hospitals = hospitals
        self.public_url = public_url
        self.clock = clock

    async def create_link(
        self,
        *,
        hospital_id: str,
        created_by: str,
        expires_in: timedelta,
        max_cases: int = 1,
    ) -> CreatedLink:
        """Sign and record an upload link for ``hospital_id``.

        Raises
        ------
        LinkError
            ``unknown_hospital``, ``bad_expiry`` or ``bad_max_cases``.
        """
        known = self.hospitals()
        if hospital_id not in known:
            raise LinkError(
                "unknown_hospital",
                f"unknown hospital {hospital_id!r}: ingest knows {', '.join(sorted(known))}",
            )
        links.check_lifetime(expires_in)
        if not 1 <= max_cases <= 100:
            raise LinkError("bad_max_cases", "max_cases must be between 1 and 100")
        expires_at = (self.clock() + expires_in).replace(microsecond=0)
        claims = LinkClaims(links.new_link_id(), hospital_id, expires_at)
        token = links.sign_link(self.key, claims)
        await self.repo.add_link(
            link_id=claims.link_id,
            hospital_id=hospital_id,
            created_by=created_by,
            expires_at=expires_at,
            max_cases=max_cases,
        )
        log.info("upload_link_created", hospital=hospital_id, by=created_by, link=claims.link_id)
        return CreatedLink(
            claims.link_id, hospital_id, f"{self.public_url}#link={token}", token, expires_at
        )

    async def open_link(self, token: str) -> OpenLink:
        """What a link allows now (:class:`LinkError` when it is not genuine or expired)."""
        claims = links.verify_link(self.key, token, self.clock())
        row = await self.repo.get_link(claims.link_id)
        if row is None or row.hospital_id != claims.hospital_id:
            raise LinkError("link_invalid", "this upload link is not known here")
        if row.revoked_at is not None:
            return OpenLink(claims, False, "this upload link was withdrawn", "link_revoked")
        if row.submissions >= row.max_cases:
            return OpenLink(claims, False, "this upload link has been used already", "link_used")
        return OpenLink(claims, True)


class PortalService:
    def __init__(
        self,
        *,
        repo: PortalRepository,
        links: LinkService,
        uploads: UploadBytes,
        cases: CaseOpener,
        max_upload_bytes: int,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.repo = repo
        self.links = links
        self.uploads = uploads
        self.cases = cases
        self.max_upload_bytes = max_upload_bytes
        self.wake = wake

    # ------------------------------------------------------------------ the form

    async def submit_form(
        self,
        *,
        link_token: str,
        intake: object,
        summary: object,
        upload_length: object,
        report_pdf: bytes | None = None,
    ) -> Submitted:
        """Validate and record the case form; the capability of its status page.

        Raises
        ------
        LinkError
            The link is not genuine, expired, withdrawn or used up.
        FormInvalid
            Naming each field that is wrong.
        """
        claims = (await self._usable(link_token)).claims
        fields: dict[str, str] = {}
        form = dict(intake) if isinstance(intake, dict) else intake
        if report_pdf is not None and isinstance(form, dict):
            try:
                text = report_text_from_pdf(report_pdf)
                if str(form.get("original_report") or "").strip():
                    fields["original_report_pdf"] = "give the report as text or as a PDF, not both"
                form["original_report"] = text
            except FormInvalid as exc:
                fields.update(exc.fields)
        try:
            form_ok = validate_intake(form)
        except FormInvalid as exc:
            fields.update(exc.fields)
        try:
            counted = _summary(summary)
        except FormInvalid as exc:
            fields.update(exc.fields)
        if (
            not isinstance(upload_length, int)
            or isinstance(upload_length, bool)
            or not 0 < upload_length <= self.max_upload_bytes
        ):
            fields["upload_length"] = (
                f"the upload must hold 1 byte to {self.max_upload_bytes // 1024**2} MB"
            )
        if fields:
            raise FormInvalid(fields)
        assert isinstance(upload_length, int)
        token, digest = links.new_capability()
        submission_id = new_id()
        try:
            await self.repo.add_submission(
                submission_id=submission_id,
                token_sha256=digest,
                link_id=claims.link_id,
                hospital_id=claims.hospital_id,
                intake=form_ok.model_dump(mode="json"),
                summary=counted,
                upload_length=upload_length,
            )
        except LinkUnusable as exc:
            raise LinkError(exc.code, exc.message) from exc
        log.info(
            "portal_form_accepted",
            hospital=claims.hospital_id,
            link=claims.link_id,
            submission=submission_id,
            bytes=upload_length,
        )
        return Submitted(submission_id, token)

    async def _usable(self, link_token: str) -> OpenLink:
        opened = await self.links.open_link(link_token)
        if not opened.usable:
            raise LinkError(opened.code, opened.reason)
        return opened

    async def submission(self, status_token: str) -> SubmissionRow:
        """The submission a status capability opens (``InputRejected`` 401 when none)."""
        row = await self.repo.submission_by_token(links.capability_digest(status_token))
        if row is None:
            raise InputRejected(
                "unknown_status_link",
                "this status link is not known: check the address",
                status=401,
            )
        return row

    # ------------------------------------------------------------------ the upload

    async def attach_upload(self, row: SubmissionRow) -> str:
        """A new tus upload id for a submission still uploading."""
        if row.state != SubmissionState.UPLOADING:
            raise InputRejected(
                "already_uploaded", "every byte of this case has arrived already", status=409
            )
        upload_id = new_id().replace("-", "")
        if not await self.repo.attach_upload(row.submission_id, upload_id):
            raise InputRejected(
                "already_uploaded", "every byte of this case has arrived already", status=409
            )
        return upload_id

    async def upload_finished(self, upload_id: str) -> None:
        """Every byte of ``upload_id`` arrived (tus completion): the case may open."""
        if await self.repo.mark_uploaded(upload_id):
            log.info("portal_upload_complete", upload=upload_id)
            self.wake()

    async def adopt_finished(self) -> int:
        """Uploads whose last bytes arrived but whose completion was never recorded (the
        replica stopped in between): mark them uploaded."""
        adopted = 0
        for upload_id in await self.repo.finished_but_uploading():
            if await self.repo.mark_uploaded(upload_id):
                adopted += 1
        return adopted

    async def open_next_case(self) -> bool:
        """Claim one uploaded submission and open its case; ``False`` when none waits.

        The case opens through ingest's upload use case, all or nothing, exactly as a
        ``POST /v1/cases`` with the same zip would. A refusal (a file that is not DICOM, a
        truncated one, ...) is kept for the status page; a transient failure is retried.
        """
        # A replica opens cases only for the hospitals it is configured for.
        row = await self.repo.claim_uploaded(
            case_id=new_id(), lease_s=OPEN_LEASE_S, hospitals=sorted(self.links.hospitals())
        )
        if row is None:
            return False
        assert row.case_id is not None and row.upload_id is not None
        bind_case(row.case_id)
        try:
            if not await self.cases.case_exists(row.case_id):
                intake = IntakeForm.model_validate(row.intake)
                with tempfile.TemporaryFile(prefix="secondread-portal-") as tmp:
                    size = await self.uploads.copy_to(row.upload_id, tmp)
                    if size != row.upload_length:
                        raise RuntimeError(f"upload holds {size} of {row.upload_length} bytes")
                    tmp.seek(0)
                    n = await self.cases.open_from_zip(
                        case_id=row.case_id,
                        hospital_id=row.hospital_id,
                        intake=intake,
                        zip_file=tmp,
                    )
                log.info("portal_case_opened", submission=row.submission_id, instances=n)
            await self.repo.mark_opened(row.submission_id)
        except InputRejected as exc:
            log.info("portal_upload_refused", submission=row.submission_id, code=exc.code)
            await self.repo.mark_refused(row.submission_id, exc.code, exc.message)
        except Exception as exc:
            delay = min(300.0, 5.0 * 2 ** min(row.attempts, 6))
            log.warning(
                "portal_open_retry",
                submission=row.submission_id,
                error=type(exc).__name__,
                delay_s=delay,
            )
            await self.repo.retry_later(row.submission_id, delay, type(exc).__name__)
            return True
        finally:
            unbind_case()
        await self.uploads.delete(row.upload_id)
        return True

    # ------------------------------------------------------------------ status

    async def case_status_changed(self, case_id: str, state: str, at: datetime) -> None:
        await self.repo.record_case_state(case_id, state, at)

    async def status(self, status_token: str) -> dict[str, Any]:
        """The status page's view: what the uploader entered and where the case is."""
        row = await self.submission(status_token)
        intake = row.intake
        physician = intake.get("referring_physician") or {}
        view: dict[str, Any] = {
            "submitted_at": row.created_at.isoformat(),
            "clinical_question": intake.get("clinical_question", ""),
            "urgency": intake.get("urgency", "routine"),
            "physician": {"name": physician.get("name", ""), "email": physician.get("email", "")},
            "patient_email": intake.get("patient_email"),
            "patient_delivery": bool(intake.get("patient_delivery_consent")),
            "files": row.summary,
            "upload": {"received_bytes": row.stored, "total_bytes": row.upload_length},
            "held": False,
        }
        if row.state == SubmissionState.UPLOADING:
            view["step"] = "uploading"
            if row.stored >= row.upload_length:
                view["step"] = "checking"
        elif row.state == SubmissionState.UPLOADED:
            view["step"] = "checking"
            view["upload"]["received_bytes"] = row.upload_length
        elif row.state == SubmissionState.REFUSED:
            view["step"] = "refused"
            view["error"] = {"code": row.error_code, "message": row.error_message}
        else:
            view["upload"]["received_bytes"] = row.upload_length
            state = row.case_state
            if state is None and row.case_id is not None:
                state = await self.cases.case_status(row.case_id)
            view["step"] = STEP_BY_STATE.get(state or "", "received")
            view["held"] = state in HELD_STATES
        return view

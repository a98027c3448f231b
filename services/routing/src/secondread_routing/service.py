"""routing's use cases, in the order a case meets them, written against the ports.

1. :meth:`RoutingService.route_case` (``case.deidentified``): classify, triage, find priors and
   earlier opinions, then assign a reader or leave the case ``unassigned`` with the reason.
2. :meth:`RoutingService.case_accepted` stops the accept timer;
   :meth:`RoutingService.case_declined` and :meth:`RoutingService.fire_timers` (accept timeout)
   close the assignment and give the case to the next eligible reader, never to one who
   declined or let it time out.
3. :meth:`RoutingService.report_signed` closes the assignment (the reader's workload falls) and
   remembers the opinion for the patient's later cases.
4. :meth:`RoutingService.retry_unassigned` runs when the roster changes, when a reader frees up
   and periodically.

Every decision happens in one :class:`~secondread_routing.ports.Unit` (a transaction that also
holds the events to publish), so a redelivery or a second replica never assigns twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from secondread_routing.assignment import (
    OVER_CAPACITY_FLAG,
    CapacityPolicy,
    CaseNeeds,
    Choice,
    accept_by,
    choose,
    due_at,
    priority,
)
from secondread_routing.ports import Archive, CaseRecord, Clock, Repository, Unit
from secondread_routing.priors import rank_priors
from secondread_routing.roster import Reader
from secondread_routing.rules import CaseFacts, Rules
from secondread_shared.errors import TransientError
from secondread_shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseDeclined,
    CaseDeidentified,
    CaseState,
    CaseStatusChanged,
    EarlierOpinion,
    Event,
    PriorStudy,
    ReportSigned,
    RosterChanged,
)
from secondread_shared.logging import get_logger

log = get_logger(__name__)

PRIORS_NONE_FLAG = "priors:none"
PRIORS_UNAVAILABLE_FLAG = "priors_unavailable"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    capacity: CapacityPolicy = "strict"
    routine_due_hours: float = 72
    urgent_due_hours: float = 24
    routine_accept_minutes: float = 240
    urgent_accept_minutes: float = 30
    priors_lookback_days: int = 3650


class RoutingService:
    def __init__(
        self,
        *,
        rules: Rules,
        repo: Repository,
        archive: Archive,
        clock: Clock | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.rules = rules
        self.repo = repo
        self.archive = archive
        self.clock = clock or SystemClock()
        self.policy = policy or Policy()

    # ---- 1. a new case ------------------------------------------------------------------------

    def classify(self, event: CaseDeidentified) -> tuple[str, str, list[str], bool]:
        """Subspecialty, rule id, flags and whether priority is raised."""
        facts = CaseFacts(
            modalities=tuple(event.modalities),
            body_parts=tuple(event.body_parts),
            study_descriptions=tuple(event.study_descriptions),
            series_descriptions=tuple(event.series_descriptions),
            procedure_codes=tuple(event.procedure_codes),
            patient_age=event.patient_age,
            clinical_question=event.clinical_question,
        )
        decided = self.rules.classify(facts)
        triage, raised = self.rules.triage(event.original_report, event.clinical_question)
        return decided.subspecialty, decided.rule, [*decided.flags, *triage], raised

    async def find_priors(self, event: CaseDeidentified) -> list[PriorStudy]:
        """The patient's other archived studies within the look-back window, most relevant
        first (body part, modality, recency)."""
        studies = await self.archive.studies_of(event.patient_pseudonym)
        current_uids = set(event.study_instance_uids)
        current = [s for s in studies if s.study_instance_uid in current_uids]
        others = [s for s in studies if s.study_instance_uid not in current_uids]
        ranked = rank_priors(current, others, lookback_days=self.policy.priors_lookback_days)
        return [
            PriorStudy(
                orthanc_study_id=r.study.orthanc_id,
                study_instance_uid=r.study.study_instance_uid,
                study_date=r.study.study_date.strftime("%Y%m%d") if r.study.study_date else "",
                description=r.study.description,
                modalities=sorted(r.study.modalities),
                body_parts=sorted(r.study.body_parts),
                score=r.score,
                reasons=list(r.reasons),
            )
            for r in ranked
        ]

    async def route_case(self, event: CaseDeidentified) -> None:
        """Classify the case and assign it, or leave it waiting with the reason.

        A redelivery of the same event changes nothing (its events are already in the outbox).
        A new ``case.deidentified`` of a known case (an amendment) updates what the reader
        sees and announces it again to the same reader.
        """
        subspecialty, rule, flags, raised = self.classify(event)
        try:
            priors = await self.find_priors(event)
        except TransientError as exc:
            priors = []
            flags.append(PRIORS_UNAVAILABLE_FLAG)
            log.warning("priors_unavailable", error=type(exc).__name__)
        now = self.clock.now()
        async with self.repo.unit() as unit:
            existing = await unit.case(event.case_id)
            if existing is not None:
                if existing.event.event_id != event.event_id:
                    await self._amend(unit, existing, event, flags, priors)
                return
            opinions = [
                o
                for o in await unit.opinions_of(event.patient_pseudonym)
                if o.case_id != event.case_id
            ]
            if not priors and not opinions and PRIORS_UNAVAILABLE_FLAG not in flags:
                flags.append(PRIORS_NONE_FLAG)
            case = CaseRecord(
                case_id=event.case_id,
                event=event,
                subspecialty=subspecialty,
                rule=rule,
                priority=priority(event.urgency, raised=raised),
                due_at=due_at(
                    event.occurred_at,
                    event.urgency,
                    routine_h=self.policy.routine_due_hours,
                    urgent_h=self.policy.urgent_due_hours,
                ),
                flags=[*event.flags, *flags],
                priors=priors,
                opinions=opinions,
            )
            await self._assign(unit, case, now, cause=event.event_id, why="")
        log.info("case_routed", subspecialty=subspecialty, rule=rule, state=case.state)

    async def _amend(
        self,
        unit: Unit,
        case: CaseRecord,
        event: CaseDeidentified,
        flags: list[str],
        priors: list[PriorStudy],
    ) -> None:
        case.event = event
        case.priors = priors
        case.flags = list(dict.fromkeys([*case.flags, *event.flags, *flags]))
        await unit.save_case(case)
        current = await unit.open_assignment(case.case_id)
        if current is None:
            return
        readers = {r.id: r for r in await unit.readers()}
        reader = readers.get(current.radiologist_id)
        if reader is not None:
            await unit.enqueue(
                self._announce(case, reader, current.accept_by, cause=event.event_id, why="")
            )

    # ---- the assignment step ------------------------------------------------------------------

    async def _choose(
        self, unit: Unit, case: CaseRecord, now: datetime, also_excluded: str = ""
    ) -> Choice:
        excluded = {*case.excluded, also_excluded} - {""}
        return choose(
            await unit.readers(),
            CaseNeeds(
                subspecialty=case.subspecialty,
                jurisdiction=case.event.jurisdiction,
                hospital_id=case.event.hospital_id,
                now=now,
                due=case.due_at,
                excluded=frozenset(excluded),
            ),
            await unit.load(),
            capacity=self.policy.capacity,
        )

    async def _assign(
        self, unit: Unit, case: CaseRecord, now: datetime, *, cause: str, why: str
    ) -> bool:
        choice = await self._choose(unit, case, now)
        if choice.reader is None:
            changed = case.state != CaseState.UNASSIGNED.value or case.reason != choice.reason
            case.state, case.reason = CaseState.UNASSIGNED.value, choice.reason
            await unit.save_case(case)
            if changed:
                await unit.enqueue(
                    [
                        CaseStatusChanged(
                            case_id=case.case_id,
                            producer="routing",
                            causation_id=cause,
                            state=CaseState.UNASSIGNED,
                            detail=choice.reason,
                        )
                    ]
                )
                log.warning("case_unassigned", subspecialty=case.subspecialty, reason=choice.reason)
            return False
        reader = choice.reader
        # the flag describes this assignment: a reassignment within capacity drops it
        case.flags = [f for f in case.flags if f != OVER_CAPACITY_FLAG]
        if choice.over_capacity:
            case.flags.append(OVER_CAPACITY_FLAG)
            log.warning("assigned_over_capacity", radiologist=reader.id)
        deadline = self._accept_by(case, now)
        case.state, case.reason = CaseState.ASSIGNED.value, ""
        await unit.save_case(case)
        await unit.add_assignment(case, reader.id, now, deadline)
        await unit.enqueue(self._announce(case, reader, deadline, cause=cause, why=why))
        log.info("case_assigned", radiologist=reader.id, subspecialty=case.subspecialty)
        return True

    def _accept_by(self, case: CaseRecord, now: datetime) -> datetime:
        return accept_by(
            now,
            case.event.urgency,
            routine_min=self.policy.routine_accept_minutes,
            urgent_min=self.policy.urgent_accept_minutes,
        )

    def _announce(
        self,
        case: CaseRecord,
        reader: Reader,
        deadline: datetime | None,
        *,
        cause: str,
        why: str,
    ) -> list[Event]:
        ev = case.event
        assigned = CaseAssigned(
            case_id=case.case_id,
            producer="routing",
            causation_id=cause,
            radiologist_id=reader.id,
            radiologist_name=reader.display_name,
            radiologist_credentials=reader.credentials,
            radiologist_certifications=list(reader.board_certifications),
            radiologist_licence=reader.licence_for(ev.jurisdiction, case.due_at.date()),
            subspecialty=case.subspecialty,
            rule=case.rule,
            urgency=ev.urgency,
            priority=case.priority,
            due_at=case.due_at,
            accept_by=deadline,
            patient_pseudonym=ev.patient_pseudonym,
            clinical_question=ev.clinical_question,
            original_report=ev.original_report,
            study_instance_uids=ev.study_instance_uids,
            orthanc_study_ids=ev.orthanc_study_ids,
            flags=case.flags,
            priors=case.priors,
            earlier_opinions=case.opinions,
        )
        detail = f"{case.subspecialty} ({case.rule}) -> {reader.id}"
        status = CaseStatusChanged(
            case_id=case.case_id,
            producer="routing",
            causation_id=assigned.event_id,
            state=CaseState.ASSIGNED,
            detail=f"{detail}; {why}" if why else detail,
        )
        return [assigned, status]

    # ---- 2. accept, decline, timeout ----------------------------------------------------------

    async def case_accepted(self, event: CaseAccepted) -> None:
        """The assigned reader took the case: its accept timer stops. An accept by anybody
        else (a stale one, after a reassignment) changes nothing."""
        async with self.repo.unit() as unit:
            current = await unit.open_assignment(event.case_id)
            if current is None or current.radiologist_id != event.radiologist_id:
                log.info("accept_ignored", radiologist=event.radiologist_id)
                return
            if current.accepted_at is None:
                await unit.accept(current.id, self.clock.now())
                log.info("case_accepted", radiologist=event.radiologist_id)

    async def case_declined(self, event: CaseDeclined) -> None:
        """The assigned reader gave the case back: to the next eligible reader."""
        async with self.repo.unit() as unit:
            current = await unit.open_assignment(event.case_id)
            if current is None or current.radiologist_id != event.radiologist_id:
                log.info("decline_ignored", radiologist=event.radiologist_id)
                return
            why = f"declined by {event.radiologist_id}"
            await self._reassign(unit, current.id, current.case_id, event.radiologist_id,
                                 "declined", why, cause=event.event_id)  # fmt: skip
        await self.retry_unassigned()  # the reader who declined may suit a waiting case

    async def fire_timers(self, limit: int = 50) -> int:
        """Reassign every assignment not accepted in time; how many fired. Each timer fires
        in exactly one transaction, whichever replica gets to it first.

        When nobody else is eligible, the case stays with its reader (a case on somebody's desk
        is better than on nobody's) and the timer starts again.
        """
        now = self.clock.now()
        async with self.repo.unit() as unit:
            expired = await unit.expired_timers(now, limit)
            for a in expired:
                case = await unit.case(a.case_id)
                if case is None:  # an assignment from before routing kept cases
                    await unit.rearm(a.id, None)
                    continue
                if (await self._choose(unit, case, now, a.radiologist_id)).reader is None:
                    await unit.rearm(a.id, self._accept_by(case, now))
                    log.info("accept_timeout_kept", radiologist=a.radiologist_id)
                    continue
                why = f"not accepted by {a.radiologist_id} in time"
                await self._reassign(unit, a.id, a.case_id, a.radiologist_id, "accept_timeout",
                                     why, cause=None)  # fmt: skip
        if expired:
            log.info("accept_timers_fired", count=len(expired))
            await self.retry_unassigned()
        return len(expired)

    async def _reassign(
        self,
        unit: Unit,
        assignment_id: int,
        case_id: str,
        reader_id: str,
        closed_reason: str,
        why: str,
        *,
        cause: str | None,
    ) -> None:
        now = self.clock.now()
        await unit.close_assignment(assignment_id, closed_reason, now)
        case = await unit.case(case_id)
        if case is None:  # an assignment from before routing kept cases: nothing to reassign
            return
        if reader_id not in case.excluded:
            case.excluded.append(reader_id)
        log.info("case_reassigning", radiologist=reader_id, reason=closed_reason)
        await self._assign(unit, case, now, cause=cause or case.event.event_id, why=why)

    # ---- 3. a signed report -------------------------------------------------------------------

    async def report_signed(self, event: ReportSigned) -> None:
        """Close the case's assignment and remember the opinion; then retry waiting cases,
        since a reader has one case less."""
        async with self.repo.unit() as unit:
            current = await unit.open_assignment(event.case_id)
            if current is not None:
                await unit.close_assignment(current.id, "signed", self.clock.now())
            case = await unit.case(event.case_id)
            if case is not None:
                if case.state != CaseState.SIGNED.value:
                    case.state, case.reason = CaseState.SIGNED.value, ""
                    await unit.save_case(case)
                await unit.record_opinion(
                    EarlierOpinion(
                        case_id=event.case_id,
                        report_id=event.report_id,
                        radiologist_id=event.radiologist_id,
                        signed_at=event.signed_at,
                        assessment=event.assessment,
                        subspecialty=case.subspecialty,
                    ),
                    case.event.patient_pseudonym,
                )
        if current is not None:
            await self.retry_unassigned()

    # ---- 4. waiting cases ---------------------------------------------------------------------

    async def retry_unassigned(self, limit: int = 200) -> int:
        """Try every waiting case again; how many found a reader."""
        now = self.clock.now()
        assigned = 0
        async with self.repo.unit() as unit:
            for case_id in await unit.unassigned(limit):
                case = await unit.case(case_id)
                if case is not None and await self._assign(
                    unit, case, now, cause=case.event.event_id, why="retried"
                ):
                    assigned += 1
        if assigned:
            log.info("unassigned_cases_assigned", count=assigned)
        return assigned


async def import_roster(repo: Repository, readers: Sequence[Reader]) -> list[str]:
    """Make the roster ``readers`` (already validated) in one transaction and announce the
    change; the ids that changed. None: nothing was written or announced."""
    async with repo.unit() as unit:
        changed = await unit.replace_readers(readers)
        if changed:
            await unit.enqueue([RosterChanged(producer="routing", readers=changed)])
    if changed:
        log.info("roster_changed", readers=len(changed))
    return changed

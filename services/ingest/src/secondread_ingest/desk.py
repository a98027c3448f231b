"""The case desk: where every received instance lands and where cases are completed.

All three doors meet here:

- uploads (``POST /v1/cases``) record a whole case at once;
- STOW-RS calls :meth:`CaseDesk.accept` per instance and answers once it is stored;
- the Storage SCP calls :meth:`CaseDesk.receive_dimse` in its association thread: the instance
  is validated, written to the spool (the durability point of a C-STORE, see
  :mod:`secondread_ingest.spool`) and handed to the asyncio loop, where spool workers store it
  with :meth:`CaseDesk.accept`.

:meth:`CaseDesk.tick` applies :func:`secondread_ingest.completion.decide` to every open case:
announce, amend, park, or fetch priors (C-FIND/C-MOVE in a worker thread).

Safe with N replicas: what decides a case is in PostgreSQL. A study's instances arriving at two
replicas join one case (the ``studies`` row is the claim); an announcement takes the case's row
lock; each replica reports its spool backlog per hospital at every tick, and no replica decides
a hospital's cases while a live one still holds instances of it; one replica at a time fetches a
case's priors, under a lease that another replica takes over when it runs out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from opentelemetry import trace

from secondread_ingest import completion
from secondread_ingest.completion import Action, Rules
from secondread_ingest.dimse import StoreOutcome
from secondread_ingest.errors import (
    OUT_OF_RESOURCES,
    STATUS_BY_REJECTION,
    SUCCESS,
    InputRejected,
    PacsError,
    SpoolError,
)
from secondread_ingest.intake import InstanceInfo, inspect_instance
from secondread_ingest.repository import Announcement, IngestRepository, OpenCase
from secondread_ingest.settings import IngestSettings, PacsConfig
from secondread_ingest.spool import Spool, SpoolEntry
from secondread_shared.errors import PermanentError
from secondread_shared.events import (
    CaseState,
    CaseStatusChanged,
    Event,
    InstanceRef,
    Role,
    new_id,
)
from secondread_shared.logging import bind_case, get_logger, unbind_case
from secondread_shared.storage import ObjectStore, sha256_hex
from secondread_shared.tracing import CASE_ID_ATTRIBUTE

log = get_logger(__name__)
tracer = trace.get_tracer("secondread.ingest")


class PriorSource(Protocol):
    """A PACS that answers C-FIND and C-MOVE (see :class:`secondread_ingest.pacs.DimsePacs`)."""

    def find_studies(
        self, pacs: PacsConfig, *, patient_id: str, issuer_of_patient_id: str, since: date
    ) -> list[str]: ...

    def move_study(self, pacs: PacsConfig, *, study_instance_uid: str, destination: str) -> int: ...


@dataclass(frozen=True)
class Accepted:
    """One instance accepted by :meth:`CaseDesk.accept`."""

    case_id: str
    info: InstanceInfo
    ref: InstanceRef | None
    outcome: str
    """``stored``, ``duplicate`` (same bytes again) or ``conflict`` (other bytes, flagged)."""


def raw_key(case_id: str, info: InstanceInfo) -> str:
    """Object key of a raw instance: by case and SOP Instance UID."""
    return f"cases/{case_id}/{info.study_instance_uid}/{info.sop_instance_uid}.dcm"


class CaseDesk:
    def __init__(
        self,
        *,
        settings: IngestSettings,
        repo: IngestRepository,
        store: ObjectStore,
        spool: Spool,
        pacs: PriorSource | None,
        wake_relay: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.store = store
        self.spool = spool
        self.pacs = pacs
        self.wake_relay = wake_relay
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[SpoolEntry] = asyncio.Queue()
        self._incoming: collections.deque[SpoolEntry] = collections.deque()
        """Spooled by SCP threads, picked up by :meth:`_pump` (no loop wake-up per C-STORE)."""
        self._pending: Counter[str] = Counter()
        """Spool entries not yet stored, per hospital (their cases are not decided meanwhile,
        on any replica: :meth:`tick` reports them). An entry that keeps failing stops counting
        after ``spool_stall_after`` attempts (:attr:`stalled`), so it never holds the hospital's
        other cases back; it is still retried, and its case amended once it is stored."""
        self.stalled = 0
        """Spool entries past ``spool_stall_after`` failed attempts, still being retried."""
        self._pending_lock = threading.Lock()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._priors: dict[str, asyncio.Task[None]] = {}
        self._last_receive = 0.0
        """``time.monotonic()`` of the last spooled C-STORE (written by SCP threads)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Requeue what the spool still holds, then start the spool workers and the ticker."""
        self._loop = asyncio.get_running_loop()
        for entry in self.spool.pending():
            self._enqueue(entry)
        for i in range(max(1, self.settings.spool_workers)):
            self._tasks.append(asyncio.create_task(self._spool_worker(), name=f"spool-{i}"))
        self._tasks.append(asyncio.create_task(self._pump(), name="spool-pump"))
        self._tasks.append(asyncio.create_task(self._ticker(), name="completion"))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._priors.values()]:
            task.cancel()
        for task in [*self._tasks, *self._priors.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def backlog(self) -> int:
        with self._pending_lock:
            return sum(self._pending.values())

    def _count(self, hospital_id: str, delta: int) -> None:
        with self._pending_lock:
            self._pending[hospital_id] += delta

    # ------------------------------------------------------------------ DIMSE (threads)

    def receive_dimse(self, hospital_id: str, data: bytes) -> StoreOutcome:
        """Validate and spool one C-STORE; called in a pynetdicom association thread."""
        if len(data) > self.settings.max_instance_bytes:
            return StoreOutcome(STATUS_BY_REJECTION["too_large"], "instance too large")
        try:
            inspect_instance(data, "C-STORE")
        except InputRejected as exc:
            log.info("dicom_store_refused", code=exc.code, hospital=hospital_id)
            return StoreOutcome(STATUS_BY_REJECTION.get(exc.code, 0xC000), exc.message)
        try:
            entry = self.spool.write(hospital_id, data)
        except SpoolError as exc:
            log.error("spool_write_failed", error=str(exc))
            return StoreOutcome(OUT_OF_RESOURCES, "cannot store now, retry later")
        self._last_receive = time.monotonic()
        self._count(entry.hospital_id, +1)
        self._incoming.append(entry)  # deque.append is thread-safe
        return StoreOutcome(SUCCESS)

    def receive_dimse_stored(self, hospital_id: str, data: bytes) -> StoreOutcome:
        """Variant without the spool: answer only once the object store and PostgreSQL hold the
        instance (``SECONDREAD_DICOM_DURABILITY=store``; slower, see docs/ingest.md)."""
        loop = self._loop
        if loop is None:  # pragma: no cover
            return StoreOutcome(OUT_OF_RESOURCES, "not ready")
        received = self.clock()
        fut = asyncio.run_coroutine_threadsafe(
            self.accept(hospital_id, data, source="dimse", name="C-STORE", received_at=received),
            loop,
        )
        try:
            fut.result(timeout=self.settings.dicom_timeout_s)
        except InputRejected as exc:
            return StoreOutcome(STATUS_BY_REJECTION.get(exc.code, 0xC000), exc.message)
        except Exception as exc:
            log.error("dicom_store_failed", error=type(exc).__name__)
            return StoreOutcome(OUT_OF_RESOURCES, "cannot store now, retry later")
        return StoreOutcome(SUCCESS)

    def _enqueue(self, entry: SpoolEntry) -> None:
        self._count(entry.hospital_id, +1)
        self._queue.put_nowait(entry)

    async def _pump(self) -> None:
        """Move what the SCP threads spooled onto the workers' queue (already counted)."""
        while True:
            while self._incoming:
                self._queue.put_nowait(self._incoming.popleft())
            await asyncio.sleep(0.05)

    async def _spool_worker(self) -> None:
        while True:
            entry = await self._queue.get()
            # Receiving comes first: while a feed is streaming, storing competes with it for the
            # CPU (and the GIL), so the spool is drained in its pauses, or once it holds
            # ``spool_high_water`` entries. Acknowledged instances are durable in the spool.
            await self._yield_to_receiving()
            await self._move(entry)  # takes the entry out of the backlog count

    async def _yield_to_receiving(self) -> None:
        # A time-based wait: the SCP threads only stamp ``_last_receive`` (no loop wake-ups).
        while True:
            busy = time.monotonic() - self._last_receive < self.settings.spool_yield_s
            if not busy or self.backlog() >= self.settings.spool_high_water:
                return
            await asyncio.sleep(self.settings.spool_yield_s / 2)

    async def _move(self, entry: SpoolEntry) -> None:
        """Store one spooled instance; transient failures are retried until they pass.

        The entry counts in its hospital's backlog until it is stored, or until it has failed
        ``spool_stall_after`` times: from then on it is retried without holding the hospital's
        other cases back (its case is amended once it is stored)."""
        delay, attempts, counted = 0.5, 0, True
        try:
            while True:
                try:
                    data = self.spool.read(entry)
                    received = datetime.fromtimestamp(entry.received_at, UTC)
                    await self.accept(
                        entry.hospital_id, data, source="dimse", name="C-STORE",
                        received_at=received,
                    )  # fmt: skip
                    self.spool.remove(entry)
                    return
                except asyncio.CancelledError:
                    raise
                except PermanentError as exc:
                    # Validated before it was acknowledged, so this is a bug, not bad input:
                    # keep the bytes aside for an operator, never drop them.
                    target = entry.path.with_suffix(".failed")
                    entry.path.rename(target)
                    log.error("spool_entry_failed", error=type(exc).__name__, file=target.name)
                    return
                except Exception as exc:
                    attempts += 1
                    if counted and attempts >= self.settings.spool_stall_after:
                        counted = False
                        self._count(entry.hospital_id, -1)
                        self.stalled += 1
                        log.error(
                            "spool_entry_stalled", error=type(exc).__name__, attempts=attempts,
                            file=entry.path.name, hospital=entry.hospital_id,
                        )  # fmt: skip
                    else:
                        log.warning("spool_store_retry", error=type(exc).__name__, delay_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60.0)
        finally:
            if counted:
                self._count(entry.hospital_id, -1)
            elif attempts >= self.settings.spool_stall_after:
                self.stalled -= 1

    # ------------------------------------------------------------------ one instance

    async def accept(
        self,
        hospital_id: str,
        data: bytes,
        *,
        source: str,
        name: str,
        received_at: datetime | None = None,
    ) -> Accepted:
        """Validate, store and record one instance of a DIMSE or STOW-RS study.

        The same SOP Instance UID with the same bytes is stored once; with other bytes it is
        kept aside under ``conflicts/`` and the case is flagged.

        Raises
        ------
        InputRejected
            The object is not acceptable (nothing is stored).
        """
        info = inspect_instance(data, name)
        study = await self.repo.case_for_study(
            hospital_id=hospital_id,
            study_instance_uid=info.study_instance_uid,
            patient_id=info.patient_id,
            issuer_of_patient_id=info.issuer_of_patient_id,
            new_case_id=new_id,
            source=source,
        )
        case_id = study.case_id
        lock = self._locks.setdefault((case_id, info.sop_instance_uid), asyncio.Lock())
        try:
            async with lock:
                return await self._store(case_id, study.role, info, data, received_at)
        finally:
            if not lock.locked():
                self._locks.pop((case_id, info.sop_instance_uid), None)

    async def _store(
        self,
        case_id: str,
        role: Role,
        info: InstanceInfo,
        data: bytes,
        received_at: datetime | None,
    ) -> Accepted:
        digest = sha256_hex(data)
        existing = await self.repo.stored_digest(case_id, info.sop_instance_uid)
        if existing == digest:
            return Accepted(case_id, info, None, "duplicate")
        bucket = self.settings.bucket_raw
        if existing is not None:
            key = f"cases/{case_id}/conflicts/{info.sop_instance_uid}.{digest[:16]}.dcm"
            obj = await self.store.put(bucket, key, data, content_type="application/dicom")
            ref = _instance_ref(obj.model_dump(), info, role)
            await self.repo.add_conflict(case_id, ref)
            bind_case(case_id)
            log.warning("conflicting_duplicate", case_id=case_id)
            unbind_case()
            return Accepted(case_id, info, ref, "conflict")
        obj = await self.store.put(
            bucket, raw_key(case_id, info), data, content_type="application/dicom"
        )
        ref = _instance_ref(obj.model_dump(), info, role)
        await self.repo.add_instance(case_id, ref, info.report_text, received_at or self.clock())
        return Accepted(case_id, info, ref, "stored")

    # ------------------------------------------------------------------ completion

    async def _ticker(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next tick retries; the error is visible
                log.error("completion_tick_failed", error=type(exc).__name__, detail=str(exc))
            await asyncio.sleep(self.settings.completion_poll_s)

    async def tick(self) -> None:
        """Apply the completion rules to every open case once (on every replica: the decisions
        are serialised by PostgreSQL, see the module's docstring)."""
        now = self.clock()
        with self._pending_lock:
            pending = dict(self._pending)
        await self.repo.report_backlog(self.settings.replica_id, pending)
        busy = await self.repo.busy_hospitals(self.settings.backlog_live_s)
        await self.repo.release_expired_priors()
        for case in await self.repo.open_cases():
            if case.hospital_id in busy or case.case_id in self._priors:
                continue  # instances of this hospital are still on their way to storage
            cfg = self.settings.hospital(case.hospital_id)
            rules = Rules(
                quiet_period_s=cfg.quiet_period_s,
                intake_hold_s=cfg.intake_hold_s,
                pacs_configured=cfg.pacs is not None and self.pacs is not None,
            )
            action = completion.decide(case.progress, rules, now)
            if action in (Action.ANNOUNCE, Action.AMEND):
                await self.announce(case.case_id)
            elif action == Action.PARK:
                reason = f"no intake within {cfg.intake_hold_s:g} s of the last instance"
                await self.repo.park(case.case_id, reason)
                log.warning("case_parked", case_id=case.case_id, hospital=case.hospital_id)
            elif action == Action.FETCH_PRIORS:
                if await self.repo.claim_priors(case.case_id, self.settings.priors_lease_s):
                    self._priors[case.case_id] = asyncio.create_task(self._fetch_priors(case))

    async def announce(self, case_id: str) -> int:
        """Announce a case (or amend it) through the outbox; return the instances announced."""
        bind_case(case_id)
        try:
            with tracer.start_as_current_span(
                "ingest announce", attributes={CASE_ID_ATTRIBUTE: case_id}
            ):
                n = await self.repo.announce(case_id, _build_announcement)
        finally:
            unbind_case()
        if n:
            self.wake_relay()
            log.info("case_announced", case_id=case_id, instances=n)
        return n

    async def _fetch_priors(self, case: OpenCase) -> None:
        cfg = self.settings.hospital(case.hospital_id)
        pacs, source = cfg.pacs, self.pacs
        assert pacs is not None and source is not None
        flags: list[str] = []
        bind_case(case.case_id)
        try:
            key = await self.repo.begin_priors(case.case_id)
            if key is None:
                flags.append("priors_skipped:no_patient_id")
            else:
                since = (self.clock() - timedelta(days=cfg.prior_lookback_days)).date()
                moved = 0
                for attempt in range(3):
                    try:
                        studies = await asyncio.to_thread(
                            source.find_studies,
                            pacs,
                            patient_id=key.patient_id,
                            issuer_of_patient_id=key.issuer_of_patient_id,
                            since=since,
                        )
                        for uid in studies:
                            if uid in key.study_instance_uids:
                                continue
                            if await self.repo.claim_prior_study(
                                case.hospital_id, uid, case.case_id
                            ):
                                moved += await asyncio.to_thread(
                                    source.move_study,
                                    pacs,
                                    study_instance_uid=uid,
                                    destination=self.settings.dicom_aet,
                                )
                        break
                    except PacsError as exc:
                        log.warning("prior_fetch_failed", attempt=attempt + 1, error=str(exc))
                        if attempt == 2:
                            flags.append(f"priors_unavailable:{exc}")
                        else:
                            await asyncio.sleep(2.0 * (attempt + 1))
                log.info("priors_fetched", instances=moved)
            await self.repo.end_priors(case.case_id, flags)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("prior_fetch_error", error=type(exc).__name__)
            await self.repo.end_priors(case.case_id, [f"priors_unavailable:{type(exc).__name__}"])
        finally:
            unbind_case()
            self._priors.pop(case.case_id, None)


def _instance_ref(obj: dict[str, object], info: InstanceInfo, role: Role) -> InstanceRef:
    return InstanceRef.model_validate(
        {
            **obj,
            "study_instance_uid": info.study_instance_uid,
            "series_instance_uid": info.series_instance_uid,
            "sop_instance_uid": info.sop_instance_uid,
            "sop_class_uid": info.sop_class_uid,
            "role": role,
        }
    )


def _build_announcement(ann: Announcement) -> list[Event]:
    """``case.received`` (with a status change) the first time, ``case.amended`` after."""
    if ann.already_announced:
        return [
            completion.amended_event(
                case_id=ann.case_id,
                hospital_id=ann.hospital_id,
                causation_id=ann.received_event_id,
                instances=ann.instances,
                flags=ann.new_flags,
            )
        ]
    if ann.intake is None or not ann.instances:
        return []
    received = completion.received_event(
        case_id=ann.case_id,
        hospital_id=ann.hospital_id,
        intake=ann.intake,
        instances=ann.instances,
        extracted_reports=ann.extracted_reports,
        flags=ann.all_flags,
    )
    priors = sum(1 for i in ann.instances if i.role == Role.PRIOR)
    status = CaseStatusChanged(
        case_id=ann.case_id,
        producer="ingest",
        causation_id=received.event_id,
        state=CaseState.RECEIVED,
        detail=f"{len(ann.instances) - priors} instances, {priors} prior instances",
    )
    return [received, status]

"""The DIMSE Storage SCP (PS3.4 Annex B; PS3.7 9.1.1 C-STORE; PS3.8 association).

pynetdicom is threaded: each association runs in its own thread and calls the C-STORE handler
there. The handler validates the instance and hands it to a ``receive`` callback (the case desk),
which makes it durable and returns the DIMSE status to answer with; work that belongs to the
asyncio loop is handed over by the desk with ``run_coroutine_threadsafe``.

- Every storage SOP class pynetdicom knows, with the transfer syntaxes in
  :data:`TRANSFER_SYNTAXES`, and Verification (C-ECHO).
- The called AE title must be ours (A-ASSOCIATE-RJ, permanent, service-user, reason 7); the
  calling AE title must be on a hospital's allow-list (same, reason 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from secondread_ingest.errors import (
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    STATUS_BY_REJECTION,
    SUCCESS,
)
from secondread_shared.logging import get_logger

__all__ = [
    "OUT_OF_RESOURCES",
    "STATUS_BY_REJECTION",
    "SUCCESS",
    "TRANSFER_SYNTAXES",
    "StorageSCP",
    "StoreOutcome",
]

log = get_logger(__name__)

TRANSFER_SYNTAXES: tuple[str, ...] = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
"""Accepted transfer syntaxes: the uncompressed ones and the common compressed ones."""


@dataclass(frozen=True)
class StoreOutcome:
    """The answer to one C-STORE: a status and, for a failure, an ErrorComment (LO, 64)."""

    status: int
    comment: str = ""


Receive = Callable[[str, bytes], StoreOutcome]
"""``receive(hospital_id, part10_bytes)``: called in the association's thread."""


class StorageSCP:
    """A non-blocking Storage SCP on ``host:port`` as ``ae_title``.

    Parameters
    ----------
    aet_to_hospital
        The calling AE titles allowed, each mapped to its hospital id.
    receive
        Makes one instance durable and says how to answer (see :data:`Receive`).
    max_pdu
        Maximum PDU length we receive; 0 is unlimited.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ae_title: str,
        aet_to_hospital: dict[str, str],
        receive: Receive,
        max_pdu: int = 0,
        timeout_s: float = 60.0,
    ) -> None:
        self.address = (host, port)
        self.ae_title = ae_title
        self.aet_to_hospital = dict(aet_to_hospital)
        self.receive = receive
        ae = AE(ae_title=ae_title)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), list(TRANSFER_SYNTAXES))
        ae.add_supported_context(Verification)
        ae.require_called_aet = True
        ae.require_calling_aet = sorted(self.aet_to_hospital)
        ae.maximum_pdu_size = max_pdu
        ae.acse_timeout = timeout_s
        ae.dimse_timeout = timeout_s
        ae.network_timeout = timeout_s
        self._ae = ae
        self._server: Any = None

    def start(self) -> None:
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        self._server = self._ae.start_server(self.address, block=False, evt_handlers=handlers)
        log.info("dicom_scp_started", port=self.address[1], aet=self.ae_title)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
            log.info("dicom_scp_stopped")

    @property
    def running(self) -> bool:
        return self._server is not None

    # ---- handlers (association threads) -------------------------------------------------

    def _on_echo(self, _event: Any) -> int:
        return SUCCESS

    def _on_rejected(self, event: Any) -> None:
        # Calling AE titles are hospital configuration, not PHI.
        log.warning(
            "dicom_association_rejected",
            calling_aet=str(event.assoc.requestor.ae_title),
            called_aet=str(event.assoc.acceptor.ae_title),
        )

    def _on_store(self, event: Any) -> Dataset | int:
        hospital_id = self.aet_to_hospital.get(str(event.assoc.requestor.ae_title).strip())
        if hospital_id is None:  # pragma: no cover - the association would have been rejected
            return _status(StoreOutcome(0x0124, "calling AE title not authorised"))
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception as exc:
            log.warning("dicom_store_unreadable", error=type(exc).__name__)
            return _status(StoreOutcome(STATUS_BY_REJECTION["not_dicom"], "cannot decode"))
        try:
            outcome = self.receive(hospital_id, data)
        except Exception as exc:  # answer with a named status; the association goes on
            log.error("dicom_store_failed", error=type(exc).__name__)
            return _status(StoreOutcome(PROCESSING_FAILURE, f"processing failure: {exc}"))
        return _status(outcome)


def _status(outcome: StoreOutcome) -> Dataset | int:
    if outcome.status == SUCCESS or not outcome.comment:
        return outcome.status
    ds = Dataset()
    ds.Status = outcome.status
    ds.ErrorComment = outcome.comment[:64]
    return ds

"""Prior studies from a hospital PACS: C-FIND then C-MOVE (PS3.4 Annex C, Study Root).

Synchronous (pynetdicom is threaded): the case desk runs these in a worker thread. The C-MOVE
destination is secondread's own AE title, which the PACS must know; the retrieved instances
arrive through the Storage SCP like any other C-STORE.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from secondread_ingest.errors import PacsError
from secondread_ingest.settings import PacsConfig

_PENDING = (0xFF00, 0xFF01)


class DimsePacs:
    """Query and retrieve as ``calling_aet``."""

    def __init__(self, calling_aet: str, *, timeout_s: float = 60.0) -> None:
        self.calling_aet = calling_aet
        self.timeout_s = timeout_s

    def _associate(self, pacs: PacsConfig, context: str) -> Any:
        ae = AE(ae_title=self.calling_aet)
        ae.add_requested_context(context)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
        if not assoc.is_established:
            raise PacsError(f"association with the PACS {pacs.ae_title} failed")
        return assoc

    def find_studies(
        self, pacs: PacsConfig, *, patient_id: str, issuer_of_patient_id: str, since: date
    ) -> list[str]:
        """StudyInstanceUIDs of the patient's studies dated ``since`` or later."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = patient_id
        if issuer_of_patient_id:
            query.IssuerOfPatientID = issuer_of_patient_id
        query.StudyDate = f"{since:%Y%m%d}-"
        query.StudyInstanceUID = ""
        query.ModalitiesInStudy = ""
        assoc = self._associate(pacs, StudyRootQueryRetrieveInformationModelFind)
        found: list[str] = []
        try:
            for status, identifier in assoc.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind
            ):
                code = int(status.Status) if status and "Status" in status else -1
                if code in _PENDING and identifier is not None:
                    uid = str(identifier.get("StudyInstanceUID", "") or "")
                    if uid:
                        found.append(uid)
                elif code != 0x0000:
                    raise PacsError(f"C-FIND failed with status 0x{code & 0xFFFF:04X}")
        finally:
            assoc.release()
        return found

    def move_study(self, pacs: PacsConfig, *, study_instance_uid: str, destination: str) -> int:
        """C-MOVE one study to ``destination``; return the completed sub-operations."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_instance_uid
        assoc = self._associate(pacs, StudyRootQueryRetrieveInformationModelMove)
        completed = 0
        try:
            for status, _identifier in assoc.send_c_move(
                query, destination, StudyRootQueryRetrieveInformationModelMove
            ):
                code = int(status.Status) if status and "Status" in status else -1
                completed = int(status.get("NumberOfCompletedSuboperations", completed) or 0)
                if code in _PENDING:
                    continue
                failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                if code != 0x0000 or failed:
                    raise PacsError(
                        f"C-MOVE ended with status 0x{code & 0xFFFF:04X}, {failed} failed"
                    )
        finally:
            assoc.release()
        return completed

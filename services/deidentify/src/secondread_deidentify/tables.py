"""DICOM PS3.15 Annex E, Table E.1-1 "Application Level Confidentiality Profile Attributes".

The Basic Profile column comes from the standard's machine-readable table as shipped, dated, by
``dicom-anonymizer`` (pinned in ``pyproject.toml``): module
``dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c``, that is PS3.15 edition
**2026c**. The table is used as data, not copied.

That package ships the Basic Profile column only. The three option columns this service applies
(PS3.15 E.3.6 Retain Longitudinal Temporal Information with Modified Dates, E.3.10 Retain Patient
Characteristics, E.3.5 Clean Descriptors) are transcribed below by keyword; a unit test checks
that every keyword named here is an attribute of the 2026c Basic Profile table.

Action codes (PS3.15 Table E.1-1, "Key"):

- ``D`` replace with a non-zero length dummy value consistent with the VR;
- ``Z`` replace with a zero length value (or a dummy);
- ``X`` remove;
- ``K`` keep;
- ``C`` clean: replace with values of similar meaning known not to identify;
- ``U`` replace a UID with a non-zero length UID, consistently within the set of instances;
- ``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``, ``X/Z/U*``: the choice depends on whether the attribute
  is Type 1, 2 or 3 in the IOD (see :func:`resolve`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from dicomanonymizer.dicom_anonymization_databases import (  # type: ignore[import-untyped]
    dicomfields_2026c as _edition,
)
from pydicom.datadict import keyword_for_tag, tag_for_keyword

EDITION: Final = "2026c"
"""The PS3.15 edition of the Basic Profile table in use."""

TABLE_SOURCE: Final = "dicom-anonymizer 2.1.0, dicomanonymizer/dicom_anonymization_databases/" + (
    "dicomfields_2026c.py"
)


class Action(StrEnum):
    """An action code of PS3.15 Table E.1-1."""

    D = "D"
    Z = "Z"
    X = "X"
    K = "K"
    C = "C"
    U = "U"
    Z_D = "Z/D"
    X_Z = "X/Z"
    X_D = "X/D"
    X_Z_D = "X/Z/D"
    X_Z_U = "X/Z/U*"


# The package's list names -> the standard's action codes.
_CATEGORIES: Final[Mapping[str, Action]] = {
    "D_TAGS": Action.D,
    "Z_TAGS": Action.Z,
    "X_TAGS": Action.X,
    "U_TAGS": Action.U,
    "Z_D_TAGS": Action.Z_D,
    "X_Z_TAGS": Action.X_Z,
    "X_D_TAGS": Action.X_D,
    "X_Z_D_TAGS": Action.X_Z_D,
    "X_Z_U_STAR_TAGS": Action.X_Z_U,
}


@dataclass(frozen=True)
class MaskedRow:
    """A repeating-group row of the table, e.g. Overlay Data ``(60xx,3000)``."""

    group: int
    element: int
    group_mask: int
    element_mask: int
    action: Action

    def matches(self, tag: int) -> bool:
        """Whether ``tag`` (``0xggggeeee``) falls in this row's group range."""
        return ((tag >> 16) & self.group_mask) == self.group and (
            tag & 0xFFFF & self.element_mask
        ) == self.element


@dataclass(frozen=True)
class ProfileTable:
    """The Basic Profile column of PS3.15 Table E.1-1 of one edition."""

    edition: str
    actions: Mapping[int, Action]
    masked: tuple[MaskedRow, ...]

    def action(self, tag: int) -> Action | None:
        """The Basic Profile action for ``tag``, or ``None`` when the table does not list it."""
        found = self.actions.get(tag)
        if found is not None:
            return found
        group = tag >> 16
        if 0x5000 <= group <= 0x60FF:
            for row in self.masked:
                if row.matches(tag):
                    return row.action
        return None

    def keywords(self) -> frozenset[str]:
        """The keyword of every singly-tagged attribute in the table."""
        return frozenset(k for k in (keyword_for_tag(t) for t in self.actions) if k)


def load_table() -> ProfileTable:
    """Read the Basic Profile column of edition :data:`EDITION` from the pinned package.

    Returns
    -------
    ProfileTable
        Every attribute of PS3.15 Table E.1-1 with its Basic Profile action.
    """
    actions: dict[int, Action] = {}
    masked: list[MaskedRow] = []
    for name, action in _CATEGORIES.items():
        rows: Iterable[tuple[int, ...]] = getattr(_edition, name)
        for row in rows:
            if len(row) == 2:
                actions[(row[0] << 16) | row[1]] = action
            else:
                masked.append(MaskedRow(row[0], row[1], row[2], row[3], action))
    return ProfileTable(EDITION, MappingProxyType(actions), tuple(masked))


# --------------------------------------------------------------------------- option columns

RETAIN_PATIENT_CHARACTERISTICS: Final[Mapping[str, Action]] = MappingProxyType(
    {
        # PS3.15 Table E.1-1, column "Rtn. Pat. Chars. Opt." (E.3.10).
        "PatientAge": Action.K,
        "PatientSex": Action.K,
        "PatientSize": Action.K,
        "PatientWeight": Action.K,
        "EthnicGroup": Action.K,
        "EthnicGroupCodeSequence": Action.K,
        "SmokingStatus": Action.K,
        "PregnancyStatus": Action.K,
        "PatientSexNeutered": Action.K,
        "AdditionalPatientHistory": Action.C,
        "Allergies": Action.C,
        "MedicalAlerts": Action.C,
        "Occupation": Action.C,
        "PatientState": Action.C,
        "SpecialNeeds": Action.C,
    }
)
"""Attributes the Retain Patient Characteristics Option keeps (K) or cleans (C)."""

CLEAN_DESCRIPTORS: Final[frozenset[str]] = frozenset(
    {
        # PS3.15 Table E.1-1, column "Clean Desc. Opt." (E.3.5): all "C".
        "AcquisitionComments",
        "AcquisitionDeviceProcessingDescription",
        "AcquisitionProtocolDescription",
        "AdditionalPatientHistory",
        "AdmittingDiagnosesDescription",
        "Allergies",
        "CommentsOnThePerformedProcedureStep",
        "ContrastBolusAgent",
        "DerivationDescription",
        "DischargeDiagnosisDescription",
        "FrameComments",
        "IdentifyingComments",
        "ImageComments",
        "ImagingServiceRequestComments",
        "MedicalAlerts",
        "Occupation",
        "PatientComments",
        "PatientState",
        "PerformedProcedureStepDescription",
        "ProtocolName",
        "ReasonForStudy",
        "ReasonForTheRequestedProcedure",
        "ReasonForVisit",
        "RequestedProcedureComments",
        "RequestedProcedureDescription",
        "ScheduledProcedureStepDescription",
        "SeriesDescription",
        "ServiceEpisodeDescription",
        "SpecialNeeds",
        "StudyComments",
        "StudyDescription",
        "VisitComments",
    }
)
"""Free-text descriptors the Clean Descriptors Option cleans (C) instead of removing."""

REMOVED_FREE_TEXT: Final[frozenset[str]] = frozenset(
    {"IdentifyingComments", "PatientComments", "ServiceEpisodeDescription", "VisitComments"}
)
"""Descriptors of :data:`CLEAN_DESCRIPTORS` that secondread removes instead (their Basic Profile
action, X): free text about the patient or the visit, of little value to a second read and
often identifying. PS3.15 E.3.5 lets an implementation remove what it may clean."""

NOT_SHIFTED: Final[frozenset[str]] = frozenset({"PatientBirthDate", "PatientBirthTime"})
"""Temporal attributes that keep their Basic Profile action under the Retain Longitudinal
Temporal Information with Modified Dates Option: the birth date is never shifted and kept, it is
removed (the Retain Patient Characteristics Option keeps ``PatientAge`` instead)."""

TEMPORAL_VRS: Final[frozenset[str]] = frozenset({"DA", "DT", "TM"})


def option_tags(keywords: Iterable[str]) -> frozenset[int]:
    """Tags of ``keywords`` (every keyword must be in the DICOM data dictionary)."""
    tags: set[int] = set()
    for kw in keywords:
        tag = tag_for_keyword(kw)
        if tag is None:
            raise KeyError(f"not a DICOM keyword: {kw}")
        tags.add(tag)
    return frozenset(tags)

"""Which PS3.15 Annex E options the engine applies, and how they are recorded in the output.

The applied profile and options are named in ``DeidentificationMethodCodeSequence``
(0012,0064) with codes of CID 7050 "De-identification Method" (PS3.16), and in
``DeidentificationMethod`` (0012,0063) as text (PS3.15 E.1.1, PS3.3 C.7.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CODING_SCHEME: Final = "DCM"

BASIC_PROFILE: Final = ("113100", "Basic Application Confidentiality Profile")
RETAIN_LONGITUDINAL_MODIFIED_DATES: Final = (
    "113107",
    "Retain Longitudinal Temporal Information Modified Dates Option",
)
RETAIN_PATIENT_CHARACTERISTICS: Final = ("113108", "Retain Patient Characteristics Option")
CLEAN_DESCRIPTORS: Final = ("113105", "Clean Descriptors Option")


@dataclass(frozen=True)
class DeidOptions:
    """The options of PS3.15 E.3 applied on top of the Basic Profile.

    Retain Safe Private (E.3.10, code 113111) is not offered: every private attribute is removed.

    Parameters
    ----------
    retain_longitudinal_modified_dates
        E.3.6: dates and date-times are shifted by a per-patient offset instead of removed.
    retain_patient_characteristics
        E.3.10 (Table E.1-1 column "Rtn. Pat. Chars. Opt."): age, sex, size, weight and the like
        are kept.
    clean_descriptors
        E.3.5: free-text descriptions are scrubbed of identifiers instead of removed.
    """

    retain_longitudinal_modified_dates: bool = True
    retain_patient_characteristics: bool = True
    clean_descriptors: bool = True

    def codes(self) -> list[tuple[str, str]]:
        """CID 7050 (code value, code meaning) of the profile and each applied option."""
        out = [BASIC_PROFILE]
        if self.retain_longitudinal_modified_dates:
            out.append(RETAIN_LONGITUDINAL_MODIFIED_DATES)
        if self.retain_patient_characteristics:
            out.append(RETAIN_PATIENT_CHARACTERISTICS)
        if self.clean_descriptors:
            out.append(CLEAN_DESCRIPTORS)
        return out

    def description(self, edition: str) -> str:
        """``DeidentificationMethod`` text (LO, at most 64 characters)."""
        parts = [f"PS3.15 {edition} Basic"]
        if self.retain_longitudinal_modified_dates:
            parts.append("RtnLongModifDates")
        if self.retain_patient_characteristics:
            parts.append("RtnPatChars")
        if self.clean_descriptors:
            parts.append("CleanDesc")
        return "+".join(parts)

"""Date shifting for the Retain Longitudinal Temporal Information with Modified Dates Option
(DICOM PS3.15 E.3.6).

Every date of one patient moves by the same whole number of days, so intervals between studies
survive and times of day stay valid. Values are DICOM DA (``YYYYMMDD``, PS3.5 Table 6.2-1) and DT
(``YYYYMMDDHHMMSS.FFFFFF&ZZXX``, any prefix of it).
"""

from __future__ import annotations

from datetime import date, timedelta


def parse_da(value: str) -> date | None:
    """The date a DA value names, or ``None`` when it is not a valid ``YYYYMMDD``."""
    value = value.strip()
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def shift_date(d: date, days: int) -> date:
    """``d`` moved by ``days`` (clamped to the range :class:`datetime.date` can hold)."""
    try:
        return d + timedelta(days=days)
    except OverflowError:
        return date.min if days < 0 else date.max


def shift_da(value: str, days: int) -> str:
    """Shift a DA value; an unparseable value becomes empty (never passed on unshifted).

    A DA range query form (``A-B``) is not valid in a stored instance and is emptied too.
    """
    d = parse_da(value)
    return "" if d is None else shift_date(d, days).strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str:
    """Shift the date part of a DT value, keeping time of day, fraction and UTC offset.

    A DT holding only a year or a year and month (PS3.5 Table 6.2-1) is shifted as the first day
    of that period and keeps its precision.
    """
    raw = value.strip()
    if len(raw) < 4 or not raw[:4].isdigit():
        return ""
    if len(raw) >= 8 and raw[:8].isdigit():
        return shift_da(raw[:8], days) + raw[8:] if parse_da(raw[:8]) else ""
    if len(raw) >= 6 and raw[:6].isdigit():
        shifted = shift_da(raw[:6] + "01", days)
        return shifted[:6] + raw[6:] if shifted else ""
    shifted = shift_da(raw[:4] + "0101", days)
    return shifted[:4] + raw[4:] if shifted else ""

import pytest

from secondread_deidentify.dates import parse_da, shift_da, shift_dt


def test_shift_da() -> None:
    assert shift_da("20260102", -2) == "20251231"
    assert shift_da("20240301", -1) == "20240229"
    assert shift_da("garbage", -1) == ""
    assert shift_da("20261332", -1) == ""
    assert parse_da("2026010") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20260102101500.123+0100", "20251231101500.123+0100"),
        ("20260102", "20251231"),
        ("202601", "202512"),
        ("2026", "2025"),
        ("x", ""),
    ],
)
def test_shift_dt_keeps_time_fraction_and_offset(value: str, expected: str) -> None:
    assert shift_dt(value, -2) == expected

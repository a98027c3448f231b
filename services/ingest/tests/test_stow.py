import pytest

from secondread_ingest.errors import InputRejected
from secondread_ingest.stow import Failed, PartReader, Stored, request_boundary, store_response


def test_boundary_and_media_types() -> None:
    ct = 'multipart/related; type="application/dicom"; boundary=abc'
    assert request_boundary(ct) == b"abc"
    for bad in (
        "application/dicom",
        'multipart/related; type="application/dicom+json"; boundary=a',
    ):
        with pytest.raises(InputRejected) as exc:
            request_boundary(bad)
        assert exc.value.status == 415


def test_parts_arrive_as_they_complete_even_split_across_chunks() -> None:
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\nONE\r\n--b\r\n\r\nTWO\r\n--b--\r\n"
    reader = PartReader(b"b", max_part=100)
    parts = []
    for i in range(0, len(body), 7):
        parts += reader.feed(body[i : i + 7])
    reader.finish()
    assert [p.read() for p in parts] == [b"ONE", b"TWO"]
    assert parts[0].content_type == "application/dicom"


def test_a_part_beyond_the_limit_is_refused() -> None:
    reader = PartReader(b"b", max_part=2)
    with pytest.raises(InputRejected) as exc:
        reader.feed(b"--b\r\n\r\nTOO BIG\r\n--b--\r\n")
    assert exc.value.code == "too_large"


def test_store_response_statuses_and_sequences() -> None:
    ok = Stored("1.2", "1.2.3", "http://x/i", "1.2.9")
    bad = Failed("1.2", "1.2.4", 0xC000, "part 2: not DICOM")
    assert store_response([ok], [], None)[0] == 200
    status, body = store_response([ok], [bad], "http://x/s")
    assert status == 202
    assert body["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [0xC000]}
    assert body["00081199"]["Value"][0]["00081155"] == {"vr": "UI", "Value": ["1.2.3"]}
    assert store_response([], [bad], None)[0] == 409

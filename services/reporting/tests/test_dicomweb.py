"""The DICOMweb proxy's rules: what a reader may ask, and what the archive is asked instead."""

from __future__ import annotations

import pytest

from secondread_reporting.dicomweb import Forward, is_uid, keep_studies, plan, viewer_url
from secondread_reporting.errors import Forbidden, InvalidInput, NotFound

MINE = frozenset({"1.2.3", "1.2.4"})


@pytest.mark.parametrize(
    "path",
    [
        "studies/1.2.3",
        "studies/1.2.3/metadata",
        "studies/1.2.3/series",
        "studies/1.2.3/series/9.8/metadata",
        "studies/1.2.3/series/9.8/instances/7.6/frames/1,2,3",
        "studies/1.2.3/series/9.8/instances/7.6/bulk/7fe00010",
        "studies/1.2.4/series/9.8/instances/7.6/rendered",
    ],
)
def test_every_resource_of_a_readable_study_is_forwarded_as_asked(path: str) -> None:
    query = [("includefield", "00081030"), ("limit", "10")]
    assert plan(path, query, MINE) == Forward(path, tuple(query))


@pytest.mark.parametrize(
    "path", ["studies/1.2.5", "studies/1.2.5/metadata", "studies/1.2.5/series/9.8/metadata"]
)
def test_any_resource_of_another_study_is_refused_naming_it(path: str) -> None:
    with pytest.raises(Forbidden, match=r"study 1\.2\.5 is not in any of your open cases") as e:
        plan(path, [], MINE)
    assert e.value.code == "study_not_readable" and e.value.status == 403


@pytest.mark.parametrize(
    "path", ["studies/1.2.3/../1.2.5/metadata", "studies/1.2.3/./metadata", "studies//1.2.3",
             "studies/1.2.3/series/%2e%2e", "studies/1.2.3/series?x"],
)  # fmt: skip
def test_paths_that_could_leave_the_study_are_refused(path: str) -> None:
    with pytest.raises(InvalidInput):
        plan(path, [], MINE)


def test_a_study_uid_that_is_not_one_is_named() -> None:
    with pytest.raises(InvalidInput, match=r"'01\.2' is not a StudyInstanceUID"):
        plan("studies/01.2/metadata", [], MINE)
    assert is_uid("1.2.840.10008.1.2.1") and not is_uid("1." + "2" * 64) and not is_uid("1..2")


def test_other_paths_are_not_resources_of_the_proxy() -> None:
    for path in ("", "tools/find", "instances/1.2"):
        with pytest.raises(NotFound):
            plan(path, [], MINE)


def test_a_study_search_without_a_study_asks_for_the_readers_studies_only() -> None:
    forward = plan("studies", [("PatientID", "SR1"), ("limit", "101")], MINE)
    assert forward.query == (("PatientID", "SR1"), ("limit", "101"),
                             ("StudyInstanceUID", "1.2.3,1.2.4"))  # fmt: skip
    assert forward.keep_studies == MINE
    assert forward.query_string == "PatientID=SR1&limit=101&StudyInstanceUID=1.2.3,1.2.4"


def test_a_study_search_naming_studies_keeps_the_readable_ones() -> None:
    forward = plan("studies", [("StudyInstanceUID", "1.2.3,1.2.5")], MINE)
    assert forward.query == (("StudyInstanceUID", "1.2.3"),)
    assert forward.keep_studies == {"1.2.3"}
    by_tag = plan("studies", [("0020000d", "1.2.4\\1.2.9")], MINE)
    assert by_tag.query == (("StudyInstanceUID", "1.2.4"),)


def test_a_study_search_naming_only_other_studies_is_refused() -> None:
    with pytest.raises(Forbidden, match=r"1\.2\.5, 1\.2\.6"):
        plan("studies", [("StudyInstanceUID", "1.2.6,1.2.5")], MINE)


def test_a_reader_without_studies_finds_nothing_without_asking_the_archive() -> None:
    forward = plan("studies", [("PatientID", "SR1")], frozenset())
    assert forward.empty and forward.keep_studies == frozenset()


def test_series_and_instance_searches_across_studies_must_name_readable_studies() -> None:
    with pytest.raises(Forbidden, match="must name its study") as e:
        plan("series", [("Modality", "CT")], MINE)
    assert e.value.code == "study_required"
    with pytest.raises(Forbidden, match=r"1\.2\.5"):
        plan("instances", [("StudyInstanceUID", "1.2.3,1.2.5")], MINE)
    ok = plan("series", [("StudyInstanceUID", "1.2.3"), ("Modality", "CT")], MINE)
    assert ok == Forward("series", (("StudyInstanceUID", "1.2.3"), ("Modality", "CT")))


def test_keep_studies_drops_every_other_and_every_malformed_answer() -> None:
    def study(uid: str) -> dict[str, object]:
        return {"0020000D": {"vr": "UI", "Value": [uid]}, "00100020": {"vr": "LO"}}

    answer = [study("1.2.3"), study("1.2.5"), {"0020000D": {"vr": "UI"}}, "junk", study("1.2.4")]
    assert keep_studies(answer, MINE) == [study("1.2.3"), study("1.2.4")]


def test_viewer_url_opens_one_study_or_compares_the_first_two() -> None:
    assert viewer_url("/viewer/", ["1.2.3"]) == "/viewer/viewer?StudyInstanceUIDs=1.2.3"
    assert viewer_url("http://h:8004/viewer", ["1.2.3", "1.2.4", "1.2.3"]) == (
        "http://h:8004/viewer/viewer?StudyInstanceUIDs=1.2.3,1.2.4"
        "&hangingProtocolId=@ohif/hpCompare"
    )

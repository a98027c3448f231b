from datetime import date

from secondread_routing.priors import StudySummary, parse_da, rank_priors


def study(uid: str, day: date | None, modalities: set[str], parts: set[str]) -> StudySummary:
    return StudySummary(
        orthanc_id=f"o-{uid}",
        study_instance_uid=uid,
        study_date=day,
        description="",
        modalities=frozenset(modalities),
        body_parts=frozenset(parts),
    )


def test_same_region_and_modality_rank_first_then_recency() -> None:
    current = [study("now", date(2026, 1, 10), {"CT"}, {"CHEST"})]
    candidates = [
        *current,
        study("ct-chest-old", date(2019, 1, 1), {"CT"}, {"CHEST"}),
        study("ct-chest-recent", date(2025, 7, 1), {"CT"}, {"CHEST"}),
        study("mr-head", date(2025, 12, 1), {"MR"}, {"HEAD"}),
        study("xr-chest", date(2025, 12, 1), {"CR"}, {"CHEST"}),
    ]
    ranked = rank_priors(current, candidates)
    assert [r.study.study_instance_uid for r in ranked] == [
        "ct-chest-recent",
        "ct-chest-old",
        "xr-chest",
        "mr-head",
    ]
    assert "same body part" in ranked[0].reasons and "same modality" in ranked[0].reasons
    assert all(r.study.study_instance_uid != "now" for r in ranked)


def test_later_or_undated_studies_get_no_recency_credit_and_limit_applies() -> None:
    current = [study("now", date(2026, 1, 10), {"CT"}, {"CHEST"})]
    later = study("later", date(2026, 6, 1), {"CT"}, {"CHEST"})
    undated = study("undated", None, {"CT"}, {"CHEST"})
    ranked = rank_priors(current, [later, undated], limit=1)
    assert len(ranked) == 1 and ranked[0].score == 5.0


def test_parse_da() -> None:
    assert parse_da("20250131") == date(2025, 1, 31)
    assert parse_da("2025013") is None and parse_da("20251399") is None and parse_da("") is None


def test_look_back_window_leaves_out_older_studies() -> None:
    current = [study("now", date(2026, 1, 10), {"CT"}, {"CHEST"})]
    old = study("old", date(2019, 1, 1), {"CT"}, {"CHEST"})
    recent = study("recent", date(2025, 7, 1), {"CT"}, {"CHEST"})
    undated = study("undated", None, {"CT"}, {"CHEST"})
    ranked = rank_priors(current, [old, recent, undated], lookback_days=365)
    assert {r.study.study_instance_uid for r in ranked} == {"recent", "undated"}

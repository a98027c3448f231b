from secondread_shared import topics


def test_every_topic_has_a_dlq_twin_and_three_partitions() -> None:
    specs = {s.name: s for s in topics.topic_specs()}
    for name in topics.EVENT_TOPICS:
        assert name in specs
        assert topics.dlq(name) in specs
        assert specs[name].partitions >= 3
    assert len(specs) == 2 * len(topics.EVENT_TOPICS)


def test_status_topic_is_compacted_and_others_are_not() -> None:
    specs = {s.name: s for s in topics.topic_specs()}
    assert specs[topics.CASE_STATUS].configs["cleanup.policy"] == "compact"
    assert "cleanup.policy" not in specs[topics.CASE_DEIDENTIFIED].configs


def test_only_phi_prefix_is_phi() -> None:
    assert topics.is_phi(topics.CASE_RECEIVED)
    assert topics.is_phi(topics.dlq(topics.CASE_RECEIVED))
    for name in topics.EVENT_TOPICS:
        if name not in (topics.CASE_RECEIVED, topics.CASE_AMENDED):
            assert not topics.is_phi(name)

from secondread_reporting.statements import Statement, split_statements

NODULE = "8 mm solid nodule in the right upper lobe, approx. 2 cm from the pleura."


def test_findings_and_impression_sentences_are_numbered_in_order() -> None:
    report = (
        "CLINICAL HISTORY: Cough.\n"
        "TECHNIQUE: CT chest without contrast.\n"
        "FINDINGS: 8 mm solid nodule in the right upper lobe, approx. 2 cm from the pleura. "
        "No pleural effusion.\n"
        "IMPRESSION:\n1. Indeterminate nodule; cannot exclude malignancy.\n2. No effusion."
    )
    assert split_statements(report) == [
        Statement(
            1,
            "findings",
            "8 mm solid nodule in the right upper lobe, approx. 2 cm from the pleura.",
        ),
        Statement(2, "findings", "No pleural effusion."),
        Statement(3, "impression", "Indeterminate nodule; cannot exclude malignancy."),
        Statement(4, "impression", "No effusion."),
    ]


def test_a_report_without_headings_is_all_findings_and_the_split_is_stable() -> None:
    report = "Lungs: 6 mm nodule, indeterminate. Heart normal size! Is there more? Yes"
    first = split_statements(report)
    assert [s.text for s in first] == [
        "Lungs: 6 mm nodule, indeterminate.",
        "Heart normal size!",
        "Is there more?",
        "Yes",
    ]
    assert {s.section for s in first} == {"findings"}
    assert split_statements(report) == first
    assert split_statements("") == []
    assert split_statements("IMPRESSION: -") == []

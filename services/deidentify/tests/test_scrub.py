from secondread_deidentify.scrub import PLACEHOLDER, scrub_text


def test_names_in_any_order_and_case_and_ids_are_replaced() -> None:
    text = "Alonso QUIXOTE (quixote, alonso), MRN-4242-7781, asks about a nodule."
    out = scrub_text(text, ["Quixote^Alonso", "MRN-4242-7781"])
    assert "quixote" not in out.lower()
    assert "alonso" not in out.lower()
    assert "MRN-4242-7781" not in out
    assert "nodule" in out
    assert PLACEHOLDER in out


def test_words_containing_a_name_are_kept() -> None:
    assert scrub_text("Alonsoville", ["Alonso"]) == "Alonsoville"


def test_birth_date_in_written_forms_is_replaced() -> None:
    text = "Born 19610315, also written 1961-03-15 or 15/03/1961."
    out = scrub_text(text, ["19610315"])
    assert "1961" not in out

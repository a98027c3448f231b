"""Batch de-identification of a folder (the engine behind ``secondread deid``)."""

from pathlib import Path

import pydicom

from secondread_deidentify.batch import Outcome, process_file, run
from secondread_deidentify.engine import Engine
from tests.deid_corpus import planted_instance, planted_values
from tests.synthetic import Patient, ct_study, write_study

KEY = b"k" * 32


def corpus(root: Path) -> list[Patient]:
    patients = [Patient(), Patient(name="Panza^Teresa", patient_id="MRN-0002")]
    write_study(root / "Quixote_Alonso" / "ct", ct_study(patients[0], count=6, size=8))
    write_study(root / "nested" / "deeper" / "teresa", ct_study(patients[1], count=5, size=8))
    (root / "Quixote_Alonso" / "us.dcm").write_bytes(
        planted_instance(patients[0], modality="US", sop_class="1.2.840.10008.5.1.4.1.1.6.1").data
    )
    (root / "notes.txt").write_text("not dicom")
    return patients


def test_every_file_at_any_depth_is_deidentified_or_quarantined(tmp_path: Path) -> None:
    patients = corpus(tmp_path / "src")
    dst = tmp_path / "dst"
    summary = run(tmp_path / "src", dst, KEY, workers=2)
    d = summary.as_dict()
    assert (d["files"], d["written"], d["quarantined"], d["skipped_not_dicom"], d["failed"]) == (
        13,
        11,
        1,
        1,
        0,
    )
    # The planted US instance names its own issuer, so its patient id is another namespace.
    assert d["patients"] == 3 and summary.ok
    main = [p for p in dst.rglob("*.dcm") if "quarantine" not in p.parts]
    assert len(main) == 11
    quarantined = list((dst / "quarantine").glob("*.dcm"))
    assert len(quarantined) == 1
    assert "US" in quarantined[0].with_suffix(".reason.txt").read_text()
    for path in dst.rglob("*"):
        rel = str(path.relative_to(dst)).lower()
        assert "quixote" not in rel and "teresa" not in rel
        if path.is_file():
            blob = path.read_bytes().lower()
            for p in patients:
                for value in planted_values(p)[:8]:
                    assert value.lower().encode() not in blob, (value, rel)
    ds = pydicom.dcmread(main[0])
    assert ds.PatientIdentityRemoved == "YES"


def test_two_runs_in_separate_processes_give_identical_output(tmp_path: Path) -> None:
    corpus(tmp_path / "src")
    run(tmp_path / "src", tmp_path / "a", KEY, workers=2)
    run(tmp_path / "src", tmp_path / "b", KEY, workers=1)
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_a_corrupt_dicom_file_fails_without_stopping_the_batch(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_study(src, ct_study(Patient(), count=2, size=8))
    (src / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    summary = run(src, tmp_path / "dst", KEY, workers=1)
    assert summary.outcomes[Outcome.WRITTEN] == 2
    assert summary.outcomes[Outcome.FAILED] == 1 and not summary.ok


def test_dst_inside_src_is_not_read_again(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_study(src, ct_study(Patient(), count=2, size=8))
    run(src, src / "out", KEY, workers=1)
    again = run(src, src / "out", KEY, workers=1)
    assert again.files == 2


def test_process_file_skips_non_dicom(tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("hello")
    assert process_file(Engine(KEY), f, tmp_path / "o").outcome is Outcome.SKIPPED

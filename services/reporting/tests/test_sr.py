import io
from pathlib import Path

import pydicom

from secondread_reporting.outputs import encapsulated_pdf, render_pdf
from secondread_shared.sr import comprehensive_sr
from tests.reporting_documents import dciodvfy_errors, document
from tests.synthetic import Patient, ct_study

PSEUDONYMOUS = Patient(name="SRabc^ANON", patient_id="SRabc", birth_date="", accession="",
                       address="", phone="", institution="")  # fmt: skip


def test_sr_follows_tid_2000_in_the_evidence_study_and_validates(tmp_path: Path) -> None:
    evidence = ct_study(PSEUDONYMOUS, count=1)[0]
    source = pydicom.dcmread(io.BytesIO(evidence))
    data = comprehensive_sr(document(), evidence, uid_entropy="r-1:abc")
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR Storage
    assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == "SRabc"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert ds.CompletionFlag == "COMPLETE" and ds.VerificationFlag == "VERIFIED"
    sections = {item.ConceptNameCodeSequence[0].CodeMeaning: item for item in ds.ContentSequence
                if item.ValueType == "CONTAINER"}  # fmt: skip
    assert set(sections) == {"Findings", "Impressions", "Recommendations"}
    texts = [i.TextValue for i in sections["Findings"].ContentSequence]
    assert texts[0].startswith("8 mm solid nodule") and "Ødegaard" in texts[0]
    assert texts[3].startswith("Statement 3 (revised, RADPEER 3b)")
    impressions = [i.TextValue for i in sections["Impressions"].ContentSequence]
    assert impressions[0] == "Upgraded: suspicious for primary lung cancer"
    again = pydicom.dcmread(
        io.BytesIO(comprehensive_sr(document(), evidence, uid_entropy="r-1:abc"))
    )
    assert again.SOPInstanceUID == ds.SOPInstanceUID  # a retry stores the same instance
    assert dciodvfy_errors(data, tmp_path) == []


def test_encapsulated_pdf_validates(tmp_path: Path) -> None:
    report = document()
    pdf = render_pdf(report, signature="c2ln", key_id="k1")
    data = encapsulated_pdf(pdf, report=report, study_instance_uid="2.25.1", uid_root_entropy="r")
    assert dciodvfy_errors(data, tmp_path) == []

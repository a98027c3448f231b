import io

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pypdf import PdfWriter

from secondread_ingest.intake import inspect_instance
from secondread_ingest.reports import ENCAPSULATED_PDF_STORAGE, extract_report_text

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def _part10(ds: Dataset) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_sr_text_values_become_the_report() -> None:
    ds = Dataset()
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = generate_uid()
    finding = Dataset()
    finding.ValueType = "TEXT"
    name = Dataset()
    name.CodeMeaning = "Finding"
    finding.ConceptNameCodeSequence = [name]
    finding.TextValue = "8 mm nodule, right upper lobe."
    ds.ContentSequence = [finding]
    info = inspect_instance(_part10(ds), "sr.dcm")
    assert info.report_text == "Finding: 8 mm nodule, right upper lobe."


def test_pdf_without_text_and_a_broken_pdf() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    buf = io.BytesIO()
    writer.write(buf)
    ds = Dataset()
    ds.SOPClassUID = ENCAPSULATED_PDF_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.EncapsulatedDocument = buf.getvalue() + (b"\0" if len(buf.getvalue()) % 2 else b"")
    assert extract_report_text(ds) is None
    ds.EncapsulatedDocument = b"%PDF-broken"
    info = inspect_instance(_part10(ds), "pdf.dcm")
    assert info.report_text is None
    assert info.report_error and "unreadable" in info.report_error
    # The refusal to read the PDF does not refuse the instance: its UIDs are all there.
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert info.study_instance_uid == ds.StudyInstanceUID
    assert info.sop_class_uid == ENCAPSULATED_PDF_STORAGE

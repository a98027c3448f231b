import io
import logging
import warnings

import pydicom
import pytest
from pydicom import config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from secondread_shared.dicom import configure_pydicom


def _with_bad_date() -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.PatientBirthDate = "Quixote-1961"  # not a DA: pydicom would warn, quoting it
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_no_log_line_or_warning_quotes_a_value(caplog: pytest.LogCaptureFixture) -> None:
    saved = (config.settings.reading_validation_mode, config.settings.writing_validation_mode)
    data = _with_bad_date()
    try:
        caplog.set_level(logging.DEBUG)
        str(pydicom.dcmread(io.BytesIO(data)).PatientBirthDate)
        assert "Quixote" in caplog.text  # the risk this guards against: PHI in a log line
        caplog.clear()
        with warnings.catch_warnings(record=True) as after:
            warnings.simplefilter("always")
            configure_pydicom()
            str(pydicom.dcmread(io.BytesIO(data)).PatientBirthDate)
        assert "Quixote" not in caplog.text
        assert after == []
    finally:
        config.settings.reading_validation_mode, config.settings.writing_validation_mode = saved

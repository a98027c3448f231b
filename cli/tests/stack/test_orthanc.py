"""The two Orthanc configurations; the PACS and ingest as the settings describe them."""

from __future__ import annotations

import json
from pathlib import Path

from secondread_cli import stack
from secondread_ingest.settings import IngestSettings
from secondread_notify.settings import NotifySettings


def test_orthanc_configs(tmp_path: Path) -> None:
    plugin = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
    archive = json.loads(
        stack.render_orthanc_config(stack.ORTHANC_ARCHIVE, tmp_path / "a", plugins=[plugin])
    )
    pacs = json.loads(stack.render_orthanc_config(stack.ORTHANC_PACS, tmp_path / "p", plugins=[]))
    assert (archive["HttpPort"], archive["DicomPort"], archive["DicomAet"]) == (
        8042,
        4242,
        "SECONDREAD_ARCH",
    )
    assert (pacs["HttpPort"], pacs["DicomPort"], pacs["DicomAet"]) == (8043, 4243, "DEMO_PACS")
    assert archive["StorageDirectory"] == str(tmp_path / "a" / "storage")
    assert archive["IndexDirectory"] == str(tmp_path / "a" / "index")
    assert archive["Plugins"] == [str(plugin)]
    assert pacs["Plugins"] == []
    for cfg in (archive, pacs):
        assert cfg["RemoteAccessAllowed"] is False
        assert cfg["AuthenticationEnabled"] is False
        assert cfg["DicomAlwaysAllowStore"] is True
        assert cfg["StableAge"] == 5
    assert pacs["DicomModalities"]["secondread"] == ["SECONDREAD", "127.0.0.1", 11112]
    assert pacs["DicomModalities"]["archive"] == ["SECONDREAD_ARCH", "127.0.0.1", 4242]
    assert archive["DicomModalities"]["pacs"] == ["DEMO_PACS", "127.0.0.1", 4243]


def test_the_pacs_is_where_ingest_and_notify_send() -> None:
    ingest = IngestSettings.model_construct()
    pacs = ingest.hospitals["demo"].pacs
    assert pacs is not None
    assert (pacs.ae_title, pacs.port) == (stack.ORTHANC_PACS.aet, stack.ORTHANC_PACS.dicom_port)
    dicom = [c for c in NotifySettings.model_construct().channels("demo") if c.kind == "dicom"]
    assert [(c.ae_title, c.port) for c in dicom] == [(pacs.ae_title, pacs.port)]
    assert (ingest.dicom_aet, ingest.dicom_port) == (stack.INGEST_AET, stack.INGEST_DICOM_PORT)
    assert f"http://127.0.0.1:{stack.ORTHANC_ARCHIVE.http_port}" == ingest.orthanc_url
    assert f"http://127.0.0.1:{stack.ORTHANC_PACS.http_port}" == ingest.pacs_url

"""A signed-report document built the way the service builds one (for the output tests)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from secondread_reporting.report import DraftContent, report_document
from secondread_reporting.statements import split_statements
from secondread_shared.events import CaseAssigned

ORIGINAL = (
    "FINDINGS: 8 mm solid nodule in the right upper lobe. No pleural effusion. "
    "IMPRESSION: Indeterminate nodule; cannot exclude malignancy."
)
DRAFT: dict[str, Any] = {
    "findings": "8 mm solid nodule in the right upper lobe — spiculated, ≥ 8 mm; Ødegaard sign.",
    "statements": [
        {"number": 1, "verdict": "refined", "grade": "2a", "comment": "spiculated margin"},
        {"number": 2, "verdict": "confirmed", "comment": ""},
        {"number": 3, "verdict": "revised", "grade": "3b", "comment": "suspicious, Lung-RADS 4B"},
    ],
    "assessment": {
        "diagnosis_changed": True,
        "severity_changed": True,
        "staging_changed": False,
        "summary": "Upgraded: suspicious for primary lung cancer",
    },
    "recommendations": [
        {"type": "follow_up_imaging", "modality": "PET-CT", "interval": "2 weeks"},
        {"type": "referral", "specialty": "thoracic surgery"},
    ],
}


def assigned(**over: Any) -> CaseAssigned:
    fields: dict[str, Any] = {
        "case_id": "c-1",
        "producer": "tests",
        "radiologist_id": "rad-okafor",
        "subspecialty": "chest",
        "urgency": "routine",
        "due_at": datetime(2026, 11, 29, tzinfo=UTC) + timedelta(hours=1),
        "patient_pseudonym": "SRabc",
        "clinical_question": "Is the nodule malignant?",
        "original_report": ORIGINAL,
        "study_instance_uids": ["2.25.1"],
        "orthanc_study_ids": ["abc"],
        "radiologist_name": "Dr. B. Okafor",
        "radiologist_credentials": "MBBS, FRCR",
        "radiologist_certifications": ["Clinical Radiology"],
        "radiologist_licence": "GB",
        **over,
    }
    return CaseAssigned(**fields)


def document(**over: Any) -> dict[str, Any]:
    a = assigned(**over)
    return report_document(
        report_id="r-1",
        assigned=a,
        original=split_statements(a.original_report),
        draft=DraftContent.model_validate(DRAFT),
        draft_version=3,
        signed_at=datetime(2026, 11, 28, 5, 0, tzinfo=UTC),
        key_id="k1",
    )


def dciodvfy_errors(data: bytes, tmp: Path) -> list[str]:
    """``Error -`` lines of dicom3tools' IOD validator (Debian ``dicom3tools``)."""
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: run deploy/local/install.sh")
    path = tmp / "object.dcm"
    path.write_bytes(data)
    done = subprocess.run(["dciodvfy", str(path)], capture_output=True, check=False)
    text = (done.stdout + done.stderr).decode(errors="replace")
    return [line for line in text.splitlines() if line.startswith("Error")]


def fhir_validate(paths: list[Path]) -> tuple[int, str]:
    """Run the HAPI FHIR R4 validator (jars from deploy/local/install.sh) over JSON files:
    its exit code (1 on any error) and its messages."""
    from secondread_cli import stack

    libs = stack.cache_dir() / "hapi-fhir-8.8.0" / "libs"
    if not (libs / ".complete").exists():
        pytest.fail(f"the HAPI FHIR validator jars are missing from {libs}: run install.sh")
    source = stack.repo_root() / "deploy" / "local" / "fhir-validator" / "Validate.java"
    java = shutil.which("java") or "java"
    done = subprocess.run([java, "-cp", f"{libs}/*", str(source), *map(str, paths)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    return done.returncode, done.stdout + done.stderr

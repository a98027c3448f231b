"""Write the benchmark corpus: N synthetic 512x512 CT instances (tests/synthetic.py), 10 patients.

Generated at run time into one flat temporary folder (dicom-anonymizer reads only the top level
of a folder); never real patients, never committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.synthetic import Patient, ct_study


def main(dest: str, count: str = "300", size: str = "512") -> None:
    n, px = int(count), int(size)
    patients = 10
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    for p in range(patients):
        patient = Patient(name=f"Bench^Patient{p}", patient_id=f"BENCH-{p:04d}")
        per = n // patients + (1 if p < n % patients else 0)
        for i, data in enumerate(ct_study(patient, count=per, size=px, seed=f"bench-{p}")):
            (out / f"P{p:02d}-IM{i:05d}.dcm").write_bytes(data)


if __name__ == "__main__":
    main(*sys.argv[1:])

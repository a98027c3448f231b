"""Time secondread deid, dicognito and dicom-anonymizer on the same corpus, side by side.

Usage: python bench/deid/compare.py SRC WORKDIR KEYFILE
Each tool runs as its own command line (process start-up included), on warm page cache, writing
into its own output folder under WORKDIR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

VENV = Path(sys.executable).parent
HERE = Path(__file__).parent


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".txt"))


def main(src: str, work: str, key_file: str) -> None:
    source, out = Path(src), Path(work)
    count = files(source)
    for p in source.rglob("*"):  # warm the page cache: no tool pays for the first read
        if p.is_file():
            p.read_bytes()
    runs = {
        "secondread deid": [
            str(VENV / "secondread"),
            "deid",
            src,
            str(out / "secondread"),
            "--key-file",
            key_file,
            "--json",
        ],
        "dicognito 0.19.0": [
            sys.executable,
            "-m",
            "dicognito",
            "--quiet",
            "--output-directory",
            str(out / "dicognito"),
            src,
        ],
        "dicom-anonymizer 2.1.0": [
            str(VENV / "dicom-anonymizer"),
            src,
            str(out / "dicom-anonymizer"),
        ],
    }
    rates: dict[str, float] = {}
    print(f"corpus: {count} instances in {src}; {os.cpu_count()} CPUs")
    print(f"{'tool':<24}{'seconds':>10}{'written':>10}{'instances/s':>14}")
    summary = ""
    for name in runs:
        # dicom-anonymizer refuses (and exits 0) unless its output folder exists
        (out / name.split()[0]).mkdir(parents=True, exist_ok=True)
    for name, cmd in runs.items():
        seconds, stdout = timed(cmd)
        written = files(out / name.split()[0])
        if written != count:
            sys.exit(f"{name} wrote {written} of {count} files: the comparison would be unfair")
        rates[name] = count / seconds
        print(f"{name:<24}{seconds:>10.2f}{written:>10}{rates[name]:>14.1f}")
        if name.startswith("secondread"):
            summary = stdout.strip().splitlines()[-1]
    best = max(rates["dicognito 0.19.0"], rates["dicom-anonymizer 2.1.0"])
    print(
        f"\nsecondread / faster of the two: {rates['secondread deid'] / best:.2f}x (target >= 2x)"
    )
    print("secondread summary:", json.dumps(json.loads(summary)))

    # The same work without process start-up and imports (bench/deid/inprocess.py).
    print("\nsteady state (imports excluded, processing only):")
    print(f"{'tool':<24}{'seconds':>10}{'written':>10}{'instances/s':>14}")
    steady: dict[str, float] = {}
    for name in runs:
        tool = name.split()[0]
        target = out / f"steady-{tool}"
        target.mkdir(parents=True, exist_ok=True)
        _, stdout = timed(
            [sys.executable, str(HERE / "inprocess.py"), tool, src, str(target), key_file]
        )
        seconds = float(stdout.strip().splitlines()[-1])
        written = files(target)
        if written != count:
            sys.exit(f"{name} (steady) wrote {written} of {count} files")
        steady[name] = count / seconds
        print(f"{name:<24}{seconds:>10.2f}{written:>10}{steady[name]:>14.1f}")
    best = max(steady["dicognito 0.19.0"], steady["dicom-anonymizer 2.1.0"])
    print(
        f"\nsteady state, secondread / faster of the two: "
        f"{steady['secondread deid'] / best:.2f}x (target >= 2x)"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])

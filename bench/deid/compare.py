"""Time secondread deid, dicognito and dicom-anonymizer on the same corpus, side by side.

Usage: python bench/deid/compare.py SRC WORKDIR KEYFILE [ROUNDS]

Each tool runs as its own command line (process start-up and imports included), on warm page
cache, writing into an empty output folder under WORKDIR. The three tools run one after the
other in a round, ROUNDS times (default 5), the order rotating from round to round, so a burst
of background load on a shared 2-core machine hits all three alike, and dirty pages are written
back before each run, so no tool pays for the previous one's output; each tool's figure is its
median over the rounds. Then the same for each tool's own entry function after its imports
(bench/deid/inprocess.py): the processing rate.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

VENV = Path(sys.executable).parent
HERE = Path(__file__).parent
SECONDREAD, DICOGNITO, ANONYMIZER = "secondread deid", "dicognito 0.19.0", "dicom-anonymizer 2.1.0"
OTHERS = (DICOGNITO, ANONYMIZER)


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"FAILED ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".txt"))


def commands(src: str, out: Path, key_file: str) -> dict[str, list[str]]:
    """Each tool's command line, writing into ``out``."""
    return {
        SECONDREAD: [
            str(VENV / "secondread"),
            "deid",
            src,
            str(out),
            "--key-file",
            key_file,
            "--json",
        ],
        DICOGNITO: [
            sys.executable,
            "-m",
            "dicognito",
            "--quiet",
            "--output-directory",
            str(out),
            src,
        ],
        ANONYMIZER: [str(VENV / "dicom-anonymizer"), src, str(out)],
    }


def in_process(tool: str, src: str, out: Path, key_file: str) -> list[str]:
    name = tool.split()[0]
    return [sys.executable, str(HERE / "inprocess.py"), name, src, str(out), key_file]


def rounds(
    title: str, count: int, n_rounds: int, run: Callable[[str, Path], float], work: Path
) -> dict[str, float]:
    """Run every tool ``n_rounds`` times, rotating the order; print and return median rates."""
    tools = [SECONDREAD, DICOGNITO, ANONYMIZER]
    seconds: dict[str, list[float]] = {t: [] for t in tools}
    for r in range(n_rounds):
        for tool in tools[r % 3 :] + tools[: r % 3]:
            out = work / tool.split()[0]
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)  # dicom-anonymizer refuses (and exits 0) without it
            os.sync()  # no tool pays for writing back the previous tool's output
            elapsed = run(tool, out)
            written = files(out)
            if written != count:
                sys.exit(f"{tool} wrote {written} of {count} files: the comparison would be unfair")
            seconds[tool].append(elapsed)
    print(f"\n{title}, median of {n_rounds} rounds:")
    print(f"{'tool':<24}{'seconds':>9}{'instances/s':>13}{'  per round (instances/s)'}")
    rates: dict[str, float] = {}
    for tool in tools:
        median = statistics.median(seconds[tool])
        rates[tool] = count / median
        each = " ".join(f"{count / s:.0f}" for s in seconds[tool])
        print(f"{tool:<24}{median:>9.2f}{rates[tool]:>13.1f}  {each}")
    per_round = [
        min(seconds[o][r] for o in OTHERS) / seconds[SECONDREAD][r] for r in range(n_rounds)
    ]
    best = max(rates[o] for o in OTHERS)
    print(
        f"secondread / faster of the two: {rates[SECONDREAD] / best:.2f}x (target >= 2x); "
        f"per round {min(per_round):.2f}x to {max(per_round):.2f}x"
    )
    return rates


def main(src: str, work: str, key_file: str, n_rounds: str = "5") -> None:
    source, out = Path(src), Path(work)
    count = files(source)
    for p in source.rglob("*"):  # warm the page cache: no tool pays for the first read
        if p.is_file():
            p.read_bytes()
    print(f"corpus: {count} instances in {src}; {os.cpu_count()} CPUs")
    summary: list[str] = []

    def command(tool: str, target: Path) -> float:
        seconds, stdout = timed(commands(src, target, key_file)[tool])
        if tool == SECONDREAD:
            summary[:] = [stdout.strip().splitlines()[-1]]
        return seconds

    def steady(tool: str, target: Path) -> float:
        _, stdout = timed(in_process(tool, src, target, key_file))
        return float(stdout.strip().splitlines()[-1])

    rounds("whole command (start-up and imports included)", count, int(n_rounds), command, out)
    print("secondread summary (last round):", json.dumps(json.loads(summary[0])))
    rounds("processing only (imports excluded)", count, int(n_rounds), steady, out)


if __name__ == "__main__":
    main(*sys.argv[1:])

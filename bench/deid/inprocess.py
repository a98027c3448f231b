"""One tool, imported first, timed on the corpus only: the steady-state rate without start-up.

secondread's start-up includes loading its free-text PHI detector (philter-lite's data,
0.4 s), which the others do not have; the whole-command figures include it.

Usage: python bench/deid/inprocess.py TOOL SRC DST KEYFILE   (TOOL: secondread, dicognito,
dicom-anonymizer). Prints the seconds the processing took. Each tool is run through its own
command-line entry function, in this process, after its imports; secondread uses one worker
process per CPU (the issue allows both cores), the others are single-process by design.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(tool: str, src: str, dst: str, key_file: str) -> None:
    if tool == "secondread":
        from secondread_deidentify import batch
        from secondread_deidentify.phi import detector

        key = Path(key_file).read_bytes().strip()
        detector()  # start-up, like the imports: the free-text detector reads its data once
        start = time.perf_counter()
        batch.run(Path(src), Path(dst), key)
    elif tool == "dicognito":
        from dicognito.__main__ import main as dicognito_main

        start = time.perf_counter()
        dicognito_main(["--quiet", "--output-directory", dst, src])
    elif tool == "dicom-anonymizer":
        from dicomanonymizer.anonymizer import main as anonymizer_main

        Path(dst).mkdir(parents=True, exist_ok=True)
        sys.argv = ["dicom-anonymizer", src, dst]
        start = time.perf_counter()
        anonymizer_main()
    else:
        sys.exit(f"unknown tool {tool!r}")
    print(f"{time.perf_counter() - start:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:])

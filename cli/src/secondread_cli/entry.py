"""The ``secondread`` executable.

``secondread deid`` goes straight to :mod:`secondread_cli.deid`, a batch command whose start-up
counts on every run; every other command goes to the typer application in
:mod:`secondread_cli.main`, which ``deid`` is listed in as well.
"""

from __future__ import annotations

import sys

# Optional back-ends pydicom probes for when it is imported, none of which `secondread deid`
# uses: numpy and Pillow decode pixel data (the engine copies it unread), requests downloads
# pydicom's test files. numpy and requests are development tools here (dicomweb-client), Pillow
# belongs to the PDF renderer of reporting. Hiding them makes pydicom load as it does on an
# install without them, which halves the command's start-up.
DEID_UNUSED_MODULES = ("numpy", "requests", "PIL")


def main() -> None:
    if sys.argv[1:2] == ["deid"]:
        for name in DEID_UNUSED_MODULES:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
        from secondread_cli.deid import main as deid

        sys.exit(deid(sys.argv[2:]))
    from secondread_cli.main import app

    app()

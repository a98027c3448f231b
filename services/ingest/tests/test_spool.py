from pathlib import Path

import pytest

from secondread_ingest.errors import SpoolError
from secondread_ingest.spool import Spool


def test_entries_survive_a_restart_and_parts_are_discarded(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    a = spool.write("demo", b"one")
    b = spool.write("demo", b"two")
    (tmp_path / "demo" / "x.part").write_bytes(b"never acknowledged")
    again = Spool(tmp_path)
    again.open()
    pending = again.pending()
    assert [e.path for e in pending] == [a.path, b.path]
    assert again.read(pending[1]) == b"two"
    assert pending[0].hospital_id == "demo" and pending[0].received_at > 0
    assert not list(tmp_path.glob("*/*.part"))
    again.remove(pending[0])
    assert len(again.pending()) == 1


def test_a_hospital_id_that_is_not_a_folder_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpoolError):
        Spool(tmp_path).write("../evil", b"x")

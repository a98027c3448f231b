"""Every stack-manager unit test runs on a stack folder of its own (never the shared .stack)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_stack_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    stack = tmp_path / "stack"
    monkeypatch.setenv("SECONDREAD_STACK_DIR", str(stack))
    return stack

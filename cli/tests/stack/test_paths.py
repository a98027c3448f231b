"""Where the stack keeps its data and finds its tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from secondread_cli import stack


def test_stack_and_cache_dirs_follow_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECONDREAD_STACK_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("SECONDREAD_CACHE_DIR", str(tmp_path / "c"))
    assert stack.stack_dir() == tmp_path / "s"
    assert stack.cache_dir() == tmp_path / "c"
    assert stack.pid_file("kafka") == tmp_path / "s" / "run" / "kafka.pid"
    assert stack.log_file("kafka") == tmp_path / "s" / "logs" / "kafka.log"
    assert stack.data_dir("kafka") == tmp_path / "s" / "kafka"
    assert stack.replicas_file() == tmp_path / "s" / "replicas"


def test_default_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECONDREAD_STACK_DIR", raising=False)
    monkeypatch.delenv("SECONDREAD_CACHE_DIR", raising=False)
    assert stack.stack_dir() == stack.repo_root() / ".stack"
    assert (stack.repo_root() / "cli" / "src" / "secondread_cli" / "stack" / "paths.py").exists()
    assert (stack.repo_root() / "deploy" / "local" / "install.sh").exists()
    assert stack.cache_dir() == Path.home() / ".cache" / "secondread"


def test_relative_stack_dir_is_made_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECONDREAD_STACK_DIR", "rel/stack")
    assert stack.stack_dir().is_absolute()

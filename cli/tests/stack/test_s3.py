"""versitygw's command line and the metadata-mode probe; credentials from the settings."""

from __future__ import annotations

from pathlib import Path

from secondread_cli import stack
from secondread_shared.settings import CommonSettings


def test_versitygw_command(tmp_path: Path) -> None:
    binary = tmp_path / "versitygw"
    plain = stack.versitygw_command(binary, tmp_path / "d", sidecar=None)
    assert plain == [
        str(binary),
        "--port",
        "127.0.0.1:9000",
        "--health",
        "/health",
        "--keep-alive",
        "posix",
        str(tmp_path / "d"),
    ]
    side = stack.versitygw_command(binary, tmp_path / "d", sidecar=tmp_path / "m")
    assert side[-3:] == ["--sidecar", str(tmp_path / "m"), str(tmp_path / "d")]
    assert side.index("posix") < side.index("--sidecar")  # backend flags after the backend


def test_xattr_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    assert isinstance(stack.supports_user_xattrs(tmp_path / "d"), bool)
    assert list((tmp_path / "d").iterdir()) == []


def test_root_credentials_are_the_services_settings(tmp_path: Path) -> None:
    fields = CommonSettings.model_fields
    assert f"127.0.0.1:{stack.S3_PORT}" == fields["s3_endpoint"].default
    assert stack.S3_ACCESS_KEY == fields["s3_access_key"].default
    assert stack.S3_SECRET_KEY == fields["s3_secret_key"].default.get_secret_value()
    env = stack.component_table()["s3"].env(tmp_path)
    assert env == {"ROOT_ACCESS_KEY": "secondread", "ROOT_SECRET_KEY": "secondread-local-secret"}

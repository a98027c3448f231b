"""S3 object storage: versitygw on its posix backend, and the platform's buckets.

Address and root credentials are ``CommonSettings.s3_endpoint``, ``s3_access_key`` and
``s3_secret_key``; the buckets ``BUCKETS_PHI`` and ``BUCKETS_CLEAR``.
"""

from __future__ import annotations

import os
from pathlib import Path

from secondread_cli.stack.component import Component, Context
from secondread_cli.stack.defaults import COMMON, address_port
from secondread_cli.stack.errors import StackError
from secondread_cli.stack.paths import HOST, cache_dir, data_dir
from secondread_cli.stack.probes import http_ok
from secondread_shared.settings import BUCKETS_CLEAR, BUCKETS_PHI

NAMES: tuple[str, ...] = ("s3",)
REPLICATED = False

S3_PORT = address_port(COMMON.s3_endpoint)
S3_ACCESS_KEY = COMMON.s3_access_key
S3_SECRET_KEY = COMMON.s3_secret_key.get_secret_value()


def supports_user_xattrs(directory: Path) -> bool:
    """Whether files in ``directory`` can carry ``user.*`` extended attributes."""
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".xattr-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        os.setxattr(probe, "user.secondread.probe", b"1")
        return os.getxattr(probe, "user.secondread.probe") == b"1"
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink(missing_ok=True)


def versitygw_command(binary: Path, data: Path, *, sidecar: Path | None) -> list[str]:
    # --keep-alive: without it versitygw answers every request with "Connection: close", and
    # each of the thousands of object reads and writes of a case opened a new connection.
    cmd = [str(binary), "--port", f"{HOST}:{S3_PORT}", "--health", "/health", "--keep-alive",
           "posix"]  # fmt: skip
    if sidecar is not None:
        cmd += ["--sidecar", str(sidecar)]
    return [*cmd, str(data)]


def _paths(stack: Path) -> tuple[Path, Path]:
    root = data_dir("s3", stack)
    return root / "data", root / "meta"


def _prepare(stack: Path) -> None:
    binary = cache_dir() / "bin" / "versitygw"
    if not binary.exists():
        raise StackError(f"{binary} not found: run deploy/local/install.sh", component="s3")
    data, meta = _paths(stack)
    data.mkdir(parents=True, exist_ok=True)
    # Decide once and remember: switching metadata modes later would orphan existing metadata.
    mode_file = data.parent / "metadata-mode"
    if not mode_file.exists():
        mode_file.write_text("xattr\n" if supports_user_xattrs(data.parent) else "sidecar\n")
    if mode_file.read_text().strip() == "sidecar":
        meta.mkdir(parents=True, exist_ok=True)


def _command(stack: Path) -> list[str]:
    data, meta = _paths(stack)
    mode_file = data.parent / "metadata-mode"
    sidecar = meta if mode_file.exists() and mode_file.read_text().strip() == "sidecar" else None
    return versitygw_command(cache_dir() / "bin" / "versitygw", data, sidecar=sidecar)


def _env(_stack: Path) -> dict[str, str]:
    return {"ROOT_ACCESS_KEY": S3_ACCESS_KEY, "ROOT_SECRET_KEY": S3_SECRET_KEY}


def _bootstrap(_stack: Path) -> list[str]:
    from minio import Minio

    client = Minio(
        endpoint=f"{HOST}:{S3_PORT}",
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        secure=False,
        region=COMMON.s3_region,
    )
    created = []
    for bucket in (*BUCKETS_PHI, *BUCKETS_CLEAR):
        if not client.bucket_exists(bucket_name=bucket):
            client.make_bucket(bucket_name=bucket)
            created.append(bucket)
    return [f"created bucket(s) {', '.join(created)}"] if created else []


def components(ctx: Context) -> list[Component]:
    return [
        Component(
            name="s3",
            ports=(S3_PORT,),
            url=f"http://{HOST}:{S3_PORT}",
            marker="versitygw",
            command=_command,
            health=lambda: http_ok(f"http://{HOST}:{S3_PORT}/health"),
            prepare=_prepare,
            bootstrap=_bootstrap,
            env=_env,
        )
    ]

"""A Toxiproxy server of our own (``toxiproxy-server``, built by ``make up``) and a small client
of its HTTP API: proxies between the services and Kafka, S3 and Orthanc, and their toxics
(latency, connection resets)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from secondread_cli import stack

API_PORT = 8474


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: int
    upstream: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listen}"


class Toxiproxy:
    def __init__(self, folder: Path, port: int = API_PORT) -> None:
        self.folder = folder
        self.api = f"http://127.0.0.1:{port}"
        self.port = port
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = stack.cache_dir() / "bin" / "toxiproxy-server"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `make up` (deploy/local/install.sh)")
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "toxiproxy.log").open("ab")
        self._proc = subprocess.Popen(
            [str(binary), "-host", "127.0.0.1", "-port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api}/version", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"toxiproxy did not start; see {self.folder / 'toxiproxy.log'}")

    def stop(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait(timeout=10)
            self._proc = None

    def create(self, proxy: Proxy) -> None:
        body = {"name": proxy.name, "listen": proxy.address,
                "upstream": f"127.0.0.1:{proxy.upstream}", "enabled": True}  # fmt: skip
        r = httpx.post(f"{self.api}/proxies", json=body, timeout=5)
        if r.status_code == 409:  # left from an earlier run of this server
            r = httpx.post(f"{self.api}/proxies/{proxy.name}", json=body, timeout=5)
        r.raise_for_status()

    def add_toxic(self, proxy: str, name: str, kind: str, **attributes: Any) -> None:
        body = {"name": name, "type": kind, "stream": "downstream", "toxicity": 1.0,
                "attributes": attributes}  # fmt: skip
        httpx.post(f"{self.api}/proxies/{proxy}/toxics", json=body, timeout=5).raise_for_status()

    def remove_toxic(self, proxy: str, name: str) -> None:
        httpx.delete(f"{self.api}/proxies/{proxy}/toxics/{name}", timeout=5)

    @contextlib.contextmanager
    def toxic(self, proxy: str, name: str, kind: str, **attributes: Any) -> Iterator[None]:
        self.add_toxic(proxy, name, kind, **attributes)
        try:
            yield
        finally:
            self.remove_toxic(proxy, name)

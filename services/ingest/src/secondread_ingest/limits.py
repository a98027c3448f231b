"""A request body limit that holds without a Content-Length header (chunked uploads).

The ``Content-Length`` check in the handlers refuses a declared oversize at once; this ASGI
wrapper counts the bytes actually received and raises ``InputRejected("too_large")`` (HTTP 413)
as soon as they pass the limit, so a chunked upload cannot fill the disk either.
"""

from __future__ import annotations

from typing import Any

from secondread_ingest.errors import InputRejected

ASGIApp = Any


class BodyLimit:
    """Wrap an ASGI app so that no HTTP request body exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise InputRejected(
                        "too_large", f"upload exceeds {self.max_bytes} bytes", status=413
                    )
            return message

        await self.app(scope, limited, send)

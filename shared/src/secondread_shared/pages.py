"""What every service's pages share: the security headers on every answer under a page's path
(a Content-Security-Policy naming only the service itself and the identity provider, no MIME
sniffing, no referrer, and how the answers may be cached)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    """ASGI middleware: adds the headers to every HTTP answer whose path starts with
    ``prefix``; other paths (the JSON APIs, the probes) pass untouched."""

    def __init__(self, app: ASGIApp, *, csp: str, prefix: str, cache: str = "no-cache") -> None:
        self.app = app
        self.prefix = prefix
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", cache.encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        await self.app(scope, receive, with_headers)

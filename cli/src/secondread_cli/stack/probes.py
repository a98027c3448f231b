"""Health probes the components share."""

from __future__ import annotations

import smtplib
import urllib.error
import urllib.request

from secondread_cli.stack.paths import HOST


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local http only)
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def smtp_ok(port: int, host: str = HOST, timeout: float = 2.0) -> bool:
    """Whether an SMTP server on ``host:port`` answers NOOP with 250."""
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            code, _ = smtp.noop()
            return code == 250
    except (OSError, smtplib.SMTPException):
        return False

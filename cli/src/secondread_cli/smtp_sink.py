"""A local SMTP sink: a real SMTP server that stores every message it receives as an ``.eml`` file.

It stands in for a mail relay in local runs and tests. It speaks the real protocol (aiosmtpd), so
the notify service exercises its actual SMTP client code. Each message is written atomically (a
temporary file in ``<maildir>/.tmp``, fsync, then rename) as
``<maildir>/<UTC timestamp>-<uuid>.eml``. Two
headers are prepended to record the SMTP envelope, which the message itself may not show (Bcc):
``X-Envelope-From`` and ``X-Envelope-To``.

Run it as::

    python -m secondread_cli.smtp_sink --host 127.0.0.1 --port 2525 --maildir .stack/mail
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("secondread.smtp_sink")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def message_filename(now: datetime | None = None, ident: uuid.UUID | None = None) -> str:
    """The file name of one stored message: sortable UTC timestamp plus a uuid."""
    now = now or datetime.now(UTC)
    ident = ident or uuid.uuid4()
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}-{ident.hex}.eml"


def envelope_headers(mail_from: str | None, rcpt_tos: list[str]) -> bytes:
    """The envelope headers prepended to each stored message."""
    return (
        f"X-Envelope-From: <{mail_from or ''}>\r\n"
        f"X-Envelope-To: {', '.join(f'<{r}>' for r in rcpt_tos)}\r\n"
    ).encode("utf-8", "surrogateescape")


def write_message(maildir: Path, data: bytes, *, name: str | None = None) -> Path:
    """Write ``data`` into ``maildir`` atomically; return the final path."""
    tmpdir = maildir / ".tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    final = maildir / (name or message_filename())
    tmp = tmpdir / (final.name + ".part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


class MaildirHandler:
    """aiosmtpd handler that stores each accepted message in a directory."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content: Any = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        data = envelope_headers(envelope.mail_from, list(envelope.rcpt_tos)) + bytes(content)
        try:
            path = await asyncio.to_thread(write_message, self.maildir, data)
        except OSError:
            log.exception("could not store message")
            return "451 Requested action aborted: local error in processing"
        # Addresses may identify a patient: log only counts and the file name.
        log.info("stored message for %d recipient(s) as %s", len(envelope.rcpt_tos), path.name)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, maildir: Path) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    handler = MaildirHandler(maildir)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="secondread-smtp-sink", data_size_limit=MAX_MESSAGE_BYTES),
        host=host,
        port=port,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("SMTP sink listening on %s:%d, storing into %s", host, port, maildir)
    async with server:
        await stop.wait()
    log.info("SMTP sink stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args.maildir.mkdir(parents=True, exist_ok=True)
    # aiosmtpd logs every command of every session at INFO (health probes included).
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(args.host, args.port, args.maildir))


if __name__ == "__main__":
    main()

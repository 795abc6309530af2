"""A real local SMTP server that keeps every message it receives as an .eml file.

`deact mail sink` runs it in the foreground (`make up` starts it); tests run it in-process on a free
port. Files are named by arrival time and a random suffix, written to a temporary name and renamed,
so a reader never sees half a message.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

DEFAULT_PORT = 8025
# aiosmtpd logs every connection at INFO and the envelope (addresses) at DEBUG: keep it to warnings.
logging.getLogger("mail.log").setLevel(logging.WARNING)
#: Largest message accepted (aiosmtpd answers 552 above it).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class EmlDirectoryHandler:
    """aiosmtpd handler: each accepted message → DIR/<time>-<random>.eml (with the envelope recipients)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        headers = f"X-Sink-Recipients: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(headers + content)
        os.replace(temporary, self.directory / name)
        return "250 Message accepted for delivery"


class MailSink:
    """The sink server; use as a context manager or start()/stop()."""

    def __init__(
        self, directory: Path, host: str = "127.0.0.1", port: int = 0, handler: object | None = None
    ) -> None:
        self.directory = Path(directory)
        self.handler = handler or EmlDirectoryHandler(self.directory)
        self.controller = Controller(
            self.handler, hostname=host, port=port or _free_port(host), data_size_limit=MAX_MESSAGE_BYTES
        )

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def url(self) -> str:
        return f"smtp://{self.controller.hostname}:{self.controller.port}"

    def start(self) -> MailSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def read_messages(directory: Path) -> list[EmailMessage]:
    """Every message in a sink directory, oldest first."""
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in sorted(Path(directory).glob("*.eml"))
    ]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

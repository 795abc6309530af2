"""SMTP delivery: one connection per pass, each failure classified as transient, permanent or unknown.

SMTP_URL: smtp://[user:pass@]host[:port] (STARTTLS when the server offers it; required on port 587)
or smtps://[user:pass@]host[:port] (TLS from the first byte, port 465 by default).

What matters for "at most once" is *when* a failure happened. Anything refused before the message
is handed over (connection, MAIL FROM, RCPT TO, a 4xx/5xx reply to DATA) was certainly not
delivered: it can be retried (4xx, connection) or not (5xx). A connection lost after the message
was handed over, before the server's reply, may or may not have delivered it: that is `Unknown`,
and such a notification goes to review rather than being sent again.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

TIMEOUT_S = 30.0


class DeliveryError(Exception):
    """A message was not delivered; subclasses say whether trying again can help."""


class TransientError(DeliveryError):
    """Not delivered; trying later may work (4xx reply, connection refused or dropped early)."""


class PermanentError(DeliveryError):
    """Not delivered and never will be as is (5xx reply)."""

    def __init__(self, message: str, *, hard_bounce: bool = False) -> None:
        super().__init__(message)
        #: Every recipient was refused with a 5xx at RCPT: the address does not take mail.
        self.hard_bounce = hard_bounce


class UnknownOutcome(DeliveryError):
    """The message was handed over but no reply came: maybe delivered."""


class SmtpUrlError(ValueError):
    """SMTP_URL cannot be used."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parsed = urlparse(url)
        if parsed.scheme not in {"smtp", "smtps"} or not parsed.hostname:
            raise SmtpUrlError("SMTP_URL must look like smtp://[user:pass@]host[:port] or smtps://…")
        implicit_tls = parsed.scheme == "smtps"
        try:
            port = parsed.port or (465 if implicit_tls else 25)
        except ValueError:
            raise SmtpUrlError("SMTP_URL has an invalid port") from None
        return cls(
            host=parsed.hostname,
            port=port,
            implicit_tls=implicit_tls,
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
        )

    def describe(self) -> str:
        """host:port and the TLS mode, without credentials (for logs and CLI output)."""
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


class SmtpSender:
    """Sends messages over one reused connection; reconnects after a connection failure."""

    def __init__(self, url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.target = SmtpTarget.parse(url)
        self.timeout_s = timeout_s
        self._connection: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
            self._connection = None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        target = self.target
        context = ssl.create_default_context()
        try:
            if target.implicit_tls:
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    target.host, target.port, timeout=self.timeout_s, context=context
                )
            else:
                connection = smtplib.SMTP(target.host, target.port, timeout=self.timeout_s)
                connection.ehlo()
                if connection.has_extn("starttls"):
                    connection.starttls(context=context)
                    connection.ehlo()
                elif target.port == 587:
                    connection.close()
                    raise PermanentError("the SMTP server on port 587 does not offer STARTTLS")
            if target.username:
                connection.login(target.username, target.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"SMTP login refused ({exc.smtp_code})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"cannot connect to {target.describe()}: {type(exc).__name__}") from exc
        self._connection = connection
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(self, message: EmailMessage, sender: str, recipients: list[str]) -> int:
        """Deliver `message`; returns how many recipients the server accepted."""
        connection = self._connect()
        try:
            code, reply = connection.mail(sender)
            if code != 250:
                self._reset(connection)
                raise _by_code(code, f"MAIL FROM refused: {code} {_text(reply)}")
            accepted, refused_codes = 0, []
            for recipient in recipients:
                code, reply = connection.rcpt(recipient)
                if code in (250, 251):
                    accepted += 1
                else:
                    refused_codes.append((code, _text(reply)))
            if not accepted:
                self._reset(connection)
                code, reply = refused_codes[0]
                if all(500 <= c < 600 for c, _ in refused_codes):
                    raise PermanentError(f"every recipient refused: {code} {reply}", hard_bounce=True)
                raise TransientError(f"every recipient refused: {code} {reply}")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise TransientError(
                f"connection lost before the message was sent: {type(exc).__name__}"
            ) from exc
        try:
            code, reply = connection.data(message.as_bytes(policy=email.policy.SMTP))
        except smtplib.SMTPDataError as exc:
            raise _by_code(
                exc.smtp_code, f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            ) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise UnknownOutcome(
                f"connection lost while the message was handed over: {type(exc).__name__}"
            ) from exc
        if code != 250:  # smtplib.data() raises on the 354 only; the final reply is ours to check
            raise _by_code(code, f"message refused: {code} {_text(reply)}")
        return accepted

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _by_code(code: int, text: str) -> DeliveryError:
    return PermanentError(text) if 500 <= code < 600 else TransientError(text)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)

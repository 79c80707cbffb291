"""Read a User's folders from a live IMAP server into a `Mailbox`, with the standard library only.

`ImapReader` connects over TLS (implicit, port 993, or STARTTLS, port 143),
logs in, asks for the folder list (``LIST "" "*" RETURN (SPECIAL-USE)`` when
the server advertises SPECIAL-USE, ``XLIST`` on the legacy servers that only
offer that, plain ``LIST`` otherwise) and hands the response to
`labelsync.providers.mailbox_from_imap`. It never sends a password over an
unencrypted connection. Nothing happens until `ImapReader.read` is called.

Example (not run here: it needs a server)::

    reader = ImapReader("imap.example.com")  # implicit TLS on 993
    mailbox = reader.read("ana@example.com", password)
"""

from __future__ import annotations

import contextlib
import enum
import imaplib
import ssl
from collections.abc import Callable
from typing import Any

from attrs import field, frozen

from labelsync import _validate as v
from labelsync.exceptions import InvalidInput, LabelSyncError
from labelsync.model import Mailbox
from labelsync.providers import mailbox_from_imap

__all__ = ["ImapError", "ImapReader", "Security"]


class ImapError(LabelSyncError):
    """Raised when the IMAP server cannot be reached, refuses TLS or login, or fails a command."""


class Security(enum.Enum):
    """How the connection is encrypted before the password is sent."""

    SSL = "SSL"
    """Implicit TLS from the first byte (IMAPS, port 993)."""
    STARTTLS = "STARTTLS"
    """A plain connection upgraded with STARTTLS before login (port 143)."""


_DEFAULT_PORTS = {Security.SSL: 993, Security.STARTTLS: 143}


def _port(instance: object, attribute: Any, value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536
    ):
        raise InvalidInput("ImapReader.port", value, "must be a TCP port (1-65535) or None")


def _timeout(instance: object, attribute: Any, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput("ImapReader.timeout", value, "must be a number of seconds > 0")


@frozen
class ImapReader:
    """Where a User's IMAP server is and how to reach it; `read` returns their `Mailbox`.

    `ssl_context` defaults to `ssl.create_default_context()` (certificates
    checked against the system's authorities); pass your own to trust a private
    authority. `port` defaults to 993 for `Security.SSL` and 143 for STARTTLS.
    """

    host: str = field(validator=v.non_empty_str)
    port: int | None = field(default=None, validator=_port)
    security: Security = field(default=Security.SSL, validator=v.member_of(Security))
    ssl_context: ssl.SSLContext | None = field(
        default=None,
        eq=False,
        validator=v.optional_instance_of(ssl.SSLContext, what="an ssl.SSLContext"),
    )
    timeout: float = field(default=30.0, validator=_timeout)

    @property
    def address(self) -> str:
        """``host:port`` as errors name the server."""
        return f"{self.host}:{self.port or _DEFAULT_PORTS[self.security]}"

    def read(
        self,
        username: str,
        password: str,
        *,
        address: str | None = None,
        guess_sent: bool = False,
    ) -> Mailbox:
        """The mailbox `username` sees, as a `Mailbox` at `address` (default: `username`).

        `guess_sent` is passed to `mailbox_from_imap`: on a server that marks no
        folder, the one folder named like a Sent folder becomes SENT, marked guessed.
        """
        lines = self.list_lines(username, password)
        return mailbox_from_imap(address or username, lines, guess_sent=guess_sent)

    def list_lines(self, username: str, password: str) -> list[Any]:
        """The raw folder list `username` gets, as imaplib returns it (for logs and fixtures)."""
        # Checked at run time too: hosts pass these from forms and configuration.
        if not isinstance(username, str) or not username.strip():  # type: ignore[redundant-expr]
            raise InvalidInput("username", username, "must be a non-empty string")
        if not isinstance(password, str) or not password:  # type: ignore[redundant-expr]
            raise InvalidInput("password", "<hidden>", "must be a non-empty string")
        conn = self._connect()
        try:
            self._login(conn, username, password)
            return self._list(conn)
        except (OSError, imaplib.IMAP4.error) as error:
            raise ImapError(f"{self.address}: {_reason(error)}") from None
        finally:
            # The answer is already read, or the error already raised.
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()

    def _connect(self) -> imaplib.IMAP4:
        context = self.ssl_context or ssl.create_default_context()
        port = self.port or _DEFAULT_PORTS[self.security]
        try:
            if self.security is Security.SSL:
                return imaplib.IMAP4_SSL(self.host, port, ssl_context=context, timeout=self.timeout)
            conn = imaplib.IMAP4(self.host, port, timeout=self.timeout)
        except (OSError, imaplib.IMAP4.error) as error:
            raise ImapError(f"{self.address}: cannot connect: {_reason(error)}") from None
        try:
            if "STARTTLS" not in conn.capabilities:
                raise ImapError(
                    f"{self.address} does not offer STARTTLS; "
                    "labelsync never sends a password unencrypted"
                )
            conn.starttls(context)
        except (OSError, imaplib.IMAP4.error) as error:
            conn.shutdown()
            raise ImapError(f"{self.address}: STARTTLS failed: {_reason(error)}") from None
        except ImapError:
            conn.shutdown()
            raise
        return conn

    def _login(self, conn: imaplib.IMAP4, username: str, password: str) -> None:
        try:
            if "AUTH=PLAIN" in conn.capabilities:
                # SASL PLAIN carries UTF-8; LOGIN takes only ASCII in imaplib.
                token = f"\0{username}\0{password}".encode()
                conn.authenticate("PLAIN", _constant(token))
            else:
                conn.login(username, password)
        except imaplib.IMAP4.error as error:
            raise ImapError(
                f"{self.address}: login as {username!r} refused: {_reason(error)}"
            ) from None

    def _list(self, conn: imaplib.IMAP4) -> list[Any]:
        # Capabilities can grow after login (RFC 3501 7.2.1), so ask again.
        typ, data = conn.capability()
        capabilities = set(b" ".join(d for d in data if isinstance(d, bytes)).upper().split())
        if b"SPECIAL-USE" in capabilities:
            return _extension_list(conn, "LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        if b"XLIST" in capabilities:
            return _extension_list(conn, "XLIST", '""', '"*"')
        typ, lines = conn.list('""', "*")
        _ok(typ, lines, "LIST")
        return list(lines)


def _extension_list(conn: imaplib.IMAP4, command: str, *args: str) -> list[Any]:
    # imaplib's list() cannot send RETURN options nor XLIST: xatom sends the
    # command as written, and response() collects its untagged answers.
    typ, data = conn.xatom(command, *args)
    _ok(typ, data, command)
    _, lines = conn.response(command)
    return [line for line in lines if line is not None]


def _ok(typ: str, data: list[Any], command: str) -> None:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{command} failed: {detail}")


def _constant(token: bytes) -> Callable[[bytes], bytes]:
    return lambda _challenge: token


def _reason(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted ({error.verify_message})"
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]  # imaplib puts the server's bytes in the message as their repr
    return text or type(error).__name__

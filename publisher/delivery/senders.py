"""Senders: the outbox folder (the default) and SMTP, each turning a Message into a SendResult.

A sender reports what happened and never touches the ledger; the mailing
loop records each outcome. SMTP outcomes follow the reply codes: 2xx sent,
4xx transient (retried with backoff and jitter), 5xx permanent. A connection
lost after the message body went out, before the server's reply, is
*uncertain*: the server may have queued it, so it is not sent again unless
the operator asks.
"""

from __future__ import annotations

import logging
import os
import random
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from publisher.config import DeliveryOptions, SiteConfig, SmtpOptions
from publisher.errors import ConfigError, PermanentDeliveryError
from publisher.model import Message, SendOutcome
from publisher.output import atomic_write

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

logger = logging.getLogger(__name__)

PASSWORD_VARIABLE = "PUBLISHER_SMTP_PASSWORD"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    reply: str  # the server's reply (code, enhanced code, text) or what happened
    is_connection_problem: bool = False  # transient for every message, not this recipient


class Sender(Protocol):
    description: str

    def send(self, message: Message) -> SendResult: ...

    def is_delivered(self, message: Message) -> bool | None:
        """True/False when the sender can tell whether *message* arrived; None when it cannot."""
        ...

    def close(self) -> None: ...


# -- outbox --------------------------------------------------------------------------


class OutboxSender:
    """One .eml file per message, written atomically: outbox/digest-0001/00000042.eml.

    Each file starts with the Return-Path a delivering MTA would add (RFC
    5321 §4.4): the envelope sender, which SMTP would have sent as MAIL FROM,
    so the operator sees where a bounce of it would go.
    """

    def __init__(self, folder: Path, *, display: str) -> None:
        self.folder = folder
        self.description = f"the outbox ({display})"

    def path_for(self, message: Message) -> Path:
        if message.outbox_name:
            return self.folder / message.outbox_name
        return self.folder / f"digest-{message.digest_id:04d}" / f"{message.subscriber_id:08d}.eml"

    def send(self, message: Message) -> SendResult:
        path = self.path_for(message)
        return_path = f"Return-Path: <{message.sender}>\r\n".encode("ascii", "replace")
        try:
            atomic_write(path, return_path + message.data)
        except OSError as err:
            return SendResult(
                "transient",
                f"cannot write {path.name}: {err.strerror or err}",
                is_connection_problem=True,
            )
        return SendResult("sent", f"stored as {path.relative_to(self.folder).as_posix()}")

    def is_delivered(self, message: Message) -> bool | None:
        # Written atomically: the file is whole or absent.
        return self.path_for(message).is_file()

    def close(self) -> None:
        return None


# -- SMTP ----------------------------------------------------------------------------


class _BodyTracking:
    """Knows whether the message body went out in the current DATA command.

    smtplib.SMTP.data() sends the "data" command as text and the body as bytes;
    once the body is sent, a lost connection means the outcome is unknown.
    """

    body_sent = False
    _in_data = False

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        self.body_sent = False
        self._in_data = True
        try:
            result: tuple[int, bytes] = super().data(msg)  # type: ignore[misc]
            return result
        finally:
            self._in_data = False

    def send(self, s: ReadableBuffer | str) -> None:
        super().send(s)  # type: ignore[misc]
        if self._in_data and isinstance(s, bytes):
            self.body_sent = True


class _Connection(_BodyTracking, smtplib.SMTP):
    pass


class _TlsConnection(_BodyTracking, smtplib.SMTP_SSL):
    pass


class SmtpSender:
    """One connection reused for many messages, reconnecting on 421 and drops."""

    def __init__(
        self,
        options: SmtpOptions,
        *,
        password: str | None,
        max_attempts: int,
        backoff: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if options.username and not password:
            where = PASSWORD_VARIABLE
            message = (
                f"not set; [delivery.smtp] username {options.username!r} needs the "
                f"password in this environment variable"
            )
            raise ConfigError(where, message)
        self.options = options
        self.password = password
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.description = f"smtp {options.host}:{options.port}"
        self._conn: _Connection | _TlsConnection | None = None
        self._sent_on_connection = 0

    def send(self, message: Message) -> SendResult:
        attempt = 1
        while True:
            result = self._attempt(message)
            if result.outcome != "transient" or attempt >= self.max_attempts:
                return result
            delay = self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2)
            logger.info(
                "%s: %s; retry %d in %.1f s", message.recipient, result.reply, attempt, delay
            )
            self.sleep(delay)
            attempt += 1

    def is_delivered(self, _message: Message) -> bool | None:
        return None  # SMTP gives no way to ask whether a message arrived

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None

    def _connection(self) -> _Connection | _TlsConnection:
        if self._conn is not None and self._sent_on_connection >= self.options.max_per_connection:
            self.close()
        if self._conn is None:
            options = self.options
            context = ssl.create_default_context()
            conn: _Connection | _TlsConnection
            if options.security == "tls":
                conn = _TlsConnection(
                    options.host, options.port, timeout=options.timeout, context=context
                )
            else:
                conn = _Connection(options.host, options.port, timeout=options.timeout)
            try:
                conn.ehlo()
                if options.security == "starttls":
                    conn.starttls(context=context)
                    conn.ehlo()
                if options.username:
                    conn.login(options.username, self.password or "")
            except smtplib.SMTPAuthenticationError as err:
                conn.close()
                message = f"login refused ({_reply(err.smtp_code, err.smtp_error)})"
                raise PermanentDeliveryError(self.description, message) from err
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._sent_on_connection = 0
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _attempt(self, message: Message) -> SendResult:
        try:
            conn = self._connection()
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            return SendResult(
                "transient",
                f"cannot connect to {self.description}: {_describe(err)}",
                is_connection_problem=True,
            )
        conn.body_sent = False
        try:
            code, text = conn.mail(message.sender)
            if code != 250:
                return self._refused(conn, code, text, is_connection_problem=True)
            code, text = conn.rcpt(message.recipient)
            if code not in (250, 251):
                return self._refused(conn, code, text, is_connection_problem=False)
            code, text = conn.data(message.data)
        except smtplib.SMTPResponseException as err:
            # DATA itself refused (not 354): nothing was sent.
            return self._refused(conn, err.smtp_code, err.smtp_error, is_connection_problem=True)
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            was_body_sent = conn.body_sent
            self._drop()
            if was_body_sent:
                return SendResult(
                    "uncertain",
                    "connection lost after the message was sent and "
                    f"before the server's reply ({_describe(err)})",
                )
            return SendResult(
                "transient", f"connection lost ({_describe(err)})", is_connection_problem=True
            )
        self._sent_on_connection += 1
        if code == 250:
            return SendResult("sent", _reply(code, text))
        return self._refused(conn, code, text, is_connection_problem=False, after_data=True)

    def _refused(
        self,
        conn: _Connection | _TlsConnection,
        code: int,
        text: bytes | str,
        *,
        is_connection_problem: bool,
        after_data: bool = False,
    ) -> SendResult:
        reply = _reply(code, text)
        if code == 421:  # the server is closing the connection (RFC 5321 §3.8)
            self._drop()
            return SendResult("transient", reply, is_connection_problem=True)
        if not after_data:
            try:
                conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        if 400 <= code < 500:
            return SendResult("transient", reply, is_connection_problem=is_connection_problem)
        return SendResult("permanent", reply)


def _reply(code: int, text: bytes | str) -> str:
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(decoded.split())}"


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


def make_sender(
    options: DeliveryOptions,
    *,
    password: str | None,
    outbox_display: str,
    sleep: Callable[[float], None] = time.sleep,
) -> OutboxSender | SmtpSender:
    """The sender the site's [delivery] method asks for.

    :raises ConfigError: when SMTP needs a password that the environment lacks.
    """
    if options.method == "smtp":
        return SmtpSender(
            options.smtp,
            password=password,
            max_attempts=options.max_attempts,
            backoff=options.backoff,
            sleep=sleep,
        )
    return OutboxSender(options.outbox_dir, display=outbox_display)


def site_sender(
    site: SiteConfig, *, sleep: Callable[[float], None] = time.sleep
) -> OutboxSender | SmtpSender:
    """The sender the site's [delivery] asks for, its SMTP password from the environment.

    :raises ConfigError: when SMTP needs a password that the environment lacks.
    """
    return make_sender(
        site.delivery,
        password=os.environ.get(PASSWORD_VARIABLE) or None,
        outbox_display=site.display(site.delivery.outbox_dir),
        sleep=sleep,
    )

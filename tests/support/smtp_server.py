"""A real SMTP server (aiosmtpd on 127.0.0.1) whose faults the tests choose.

Used as a context manager: it listens on a free loopback port and records
every message it accepted, parsed with the standard `email` package.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Faults:
    """What the server does wrong; counts are of DATA commands seen so far (from 1)."""

    reject_recipients: dict[str, str] = field(default_factory=dict)  # address -> reply
    temporary_from: int | None = None  # answer 451 from this message on ...
    temporary_until: int | None = None  # ... up to and including this one
    drop_at_rcpt: set[int] = field(default_factory=set)  # close at the Nth RCPT command
    drop_before_store_at: set[int] = field(default_factory=set)  # close without storing
    drop_after_store_at: set[int] = field(default_factory=set)  # store, then close before 250
    delay: float = 0.0  # seconds to wait before storing and answering DATA
    reply_delay: float = 0.0  # seconds to wait after storing, before answering DATA


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.received: list[Received] = []
        self.data_commands = 0
        self.rcpt_commands = 0
        self.lock = threading.Lock()
        self.stored = threading.Condition(self.lock)  # notified as each message is stored

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, _session: Session, envelope: Envelope, address: str, _options: Any
    ) -> str:
        with self.lock:
            self.rcpt_commands += 1
            number = self.rcpt_commands
        if number in self.faults.drop_at_rcpt:
            server.transport.close()
            return "421 4.3.0 closing"
        reply = self.faults.reject_recipients.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        import asyncio

        with self.lock:
            self.data_commands += 1
            number = self.data_commands
        faults = self.faults
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if number in faults.drop_before_store_at:
            server.transport.close()
            return "421 4.3.0 closing"
        if (
            faults.temporary_from is not None
            and number >= faults.temporary_from
            and (faults.temporary_until is None or number <= faults.temporary_until)
        ):
            return "451 4.3.0 Try again later"
        with self.stored:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                )
            )
            self.stored.notify_all()
        if faults.reply_delay:
            await asyncio.sleep(faults.reply_delay)
        if number in faults.drop_after_store_at:
            server.transport.close()
            return "250 2.0.0 stored, but you will never hear it"
        return f"250 2.0.0 Ok: queued as {number}"


class SmtpServer:
    def __init__(self, faults: Faults | None = None, *, port: int | None = None) -> None:
        self.faults = faults or Faults()
        self.handler = _Handler(self.faults)
        self.port = port or free_port()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, decode_data=False
        )

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def wait_for_received(self, count: int, timeout: float) -> bool:
        """Until the server has stored *count* messages: False if *timeout* passes first."""
        with self.handler.stored:
            return self.handler.stored.wait_for(lambda: len(self.received) >= count, timeout)

    def by_recipient(self) -> dict[str, list[Received]]:
        result: dict[str, list[Received]] = {}
        for item in self.received:
            for rcpt in item.recipients:
                result.setdefault(rcpt, []).append(item)
        return result

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

"""What a message that came back is, and which delivery it answers.

In order: an RFC 3464 delivery status notification (multipart/report,
report-type=delivery-status), an RFC 5965 abuse report (report-type=
feedback-report), a non-standard bounce that flufl.bounce recognises
(Mailman's detectors), an RFC 3834 auto-reply (ignored). The delivery is named
by a bounce token: in the VERP address the bounce was sent to (Delivered-To,
X-Original-To, To) or in the X-Publisher-Delivery header of the returned
original. Only a token with a valid MAC attributes a bounce (actions.py).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses
from typing import Literal

from publisher import tokens
from publisher.errors import BounceError

DELIVERY_HEADER = "X-Publisher-Delivery"
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_TOKEN_HEADER = re.compile(
    rf"^{DELIVERY_HEADER}:[ \t]*([0-9a-fA-F.]+)", re.MULTILINE | re.IGNORECASE
)
# RFC 3834 §5 and the habits of vacation programs that predate it.
_VACATION = re.compile(
    r"\b(out of (the )?office|vacation|auto(matic)?[ -]?(reply|response|antwort)|abwesen|"
    r"absence|away from)\b",
    re.IGNORECASE,
)
_COMPLAINT_TYPES = frozenset({"abuse", "fraud"})

Kind = Literal["hard", "soft", "complaint", "auto-reply", "unknown"]


@dataclass(frozen=True, slots=True)
class Finding:
    """What one message is: its kind, status code and the tokens that may name its delivery."""

    kind: Kind
    key: str  # idempotency key: its Message-ID, or a hash of its bytes
    label: str  # how the report names it: its Message-ID, else what the caller named it
    status: str = ""
    detail: str = ""
    tokens: tuple[str, ...] = ()  # candidates, most trusted first; actions checks the MAC
    recipient: str | None = None


def read_message(data: bytes, *, name: str, bounce_address: str | None) -> Finding:
    """Read one returned message.

    :raises BounceError: for a message that cannot be read as one (no header
        fields, a multipart without its boundaries, a report without its
        status part); the caller reports it and leaves it where it is.
    """
    if not data.strip():
        raise BounceError(name, "empty message")
    try:
        message = email.message_from_bytes(data, policy=email.policy.compat32)
    except Exception as err:  # the parser is lenient; anything it raises is a broken message
        detail = f"cannot be parsed ({err})"
        raise BounceError(name, detail) from err
    _check_whole(message, name)
    message_id = (message.get("Message-ID") or "").strip()
    key = f"message {message_id}" if message_id else f"sha256 {hashlib.sha256(data).hexdigest()}"
    label = message_id or name
    envelope = tuple(_envelope_tokens(message, bounce_address))
    report = _report_type(message)
    if report == "delivery-status":
        return _read_dsn(message, name, key, label, envelope, bounce_address)
    if report == "feedback-report":
        return _read_arf(message, name, key, label, envelope, bounce_address)
    # flufl.bounce before the auto-reply test: Exim marks its bounces auto-replied too.
    other = _read_other(message, key, label, envelope, bounce_address)
    if other.kind == "unknown" and is_auto_reply(message):
        return Finding("auto-reply", key, label)
    return other


def _check_whole(message: Message, name: str) -> None:
    if not message.keys():
        raise BounceError(name, "no header fields: not an email message")
    for part in message.walk():
        for defect in part.defects:
            kind = type(defect).__name__
            if kind in ("StartBoundaryNotFoundDefect", "NoBoundaryInMultipartDefect"):
                detail = f"a {part.get_content_type()} without its boundary ({kind})"
                raise BounceError(name, detail)


def _report_type(message: Message) -> str | None:
    if message.get_content_type() != "multipart/report":
        return None
    value = message.get_param("report-type")
    return value.lower() if isinstance(value, str) else None


# -- RFC 3464 ------------------------------------------------------------------------


def _read_dsn(
    message: Message,
    name: str,
    key: str,
    label: str,
    envelope: tuple[str, ...],
    bounce_address: str | None,
) -> Finding:
    blocks = _status_blocks(message, name)
    per_recipient = [block for block in blocks[1:] if block.get("Action")] or [
        block for block in blocks if block.get("Action")
    ]
    if not per_recipient:
        raise BounceError(name, "a delivery-status report without any Action field")
    chosen = _worst(per_recipient)
    action = (chosen.get("Action") or "").strip().lower()
    status = _status_code(chosen.get("Status") or "")
    recipient = _recipient(chosen.get("Final-Recipient") or chosen.get("Original-Recipient"))
    returned = tuple(_returned_tokens(message, bounce_address))
    found = (*envelope, *returned)
    if action == "failed":
        kind: Kind = "hard" if status.startswith("5") else "soft"
    elif action == "delayed":
        kind = "soft"
    else:  # delivered, relayed, expanded: good news, nothing to do
        kind = "unknown"
    return Finding(kind, key, label, status, "", found, recipient)


def _status_blocks(message: Message, name: str) -> list[Message]:
    for part in message.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return [block for block in payload if isinstance(block, Message)]
            text = _payload_bytes(part)
            return _header_blocks(text.decode("utf-8", "replace"))
    raise BounceError(name, "a delivery-status report without its message/delivery-status part")


def _header_blocks(text: str) -> list[Message]:
    parser = HeaderParser()
    return [parser.parsestr(chunk + "\n") for chunk in re.split(r"\r?\n\s*\r?\n", text) if chunk]


def _worst(blocks: list[Message]) -> Message:
    """The recipient block that says most: failed before delayed, 5.x.x before 4.x.x."""

    def rank(block: Message) -> tuple[int, int]:
        action = (block.get("Action") or "").strip().lower()
        status = _status_code(block.get("Status") or "")
        return (
            0 if action == "failed" else 1 if action == "delayed" else 2,
            0 if status[:1] == "5" else 1,
        )

    return min(blocks, key=rank)


def _status_code(text: str) -> str:
    match = _STATUS.search(text)
    return match.group(0) if match else ""


def _recipient(value: str | None) -> str | None:
    """`rfc822; ada@example.org` → `ada@example.org`."""
    if not value:
        return None
    _type, _semicolon, address = value.partition(";")
    address = (address or value).strip().strip("<>")
    return address or None


# -- RFC 5965 ------------------------------------------------------------------------


def _read_arf(
    message: Message,
    name: str,
    key: str,
    label: str,
    envelope: tuple[str, ...],
    bounce_address: str | None,
) -> Finding:
    # The report's own part, the first: a returned message may quote another further on.
    fields = next(
        (
            _feedback_fields(part)
            for part in message.walk()
            if part.get_content_type() == "message/feedback-report"
        ),
        None,
    )
    if fields is None:
        raise BounceError(name, "a feedback report without its message/feedback-report part")
    feedback = (fields.get("Feedback-Type") or "").strip().lower()
    returned = tuple(_returned_tokens(message, bounce_address))
    recipient = _recipient(fields.get("Original-Rcpt-To"))
    kind: Kind = "complaint" if feedback in _COMPLAINT_TYPES else "unknown"
    reporter = fields.get("User-Agent") or fields.get("Reported-Domain") or "a feedback loop"
    detail = f"{feedback} report by {reporter}"
    return Finding(kind, key, label, "", detail, (*returned, *envelope), recipient)


def _feedback_fields(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    raw = _payload_bytes(part)
    return HeaderParser().parsestr(raw.decode("utf-8", "replace"))


# -- RFC 3834 and the rest -----------------------------------------------------------


def is_auto_reply(message: Message) -> bool:
    """An automatic reply (vacation, out of office): never a bounce."""
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    precedence = (message.get("Precedence") or "").strip().lower()
    if precedence == "auto_reply":
        return True
    return bool(_VACATION.search(str(message.get("Subject") or "")))


def _read_other(
    message: Message,
    key: str,
    label: str,
    envelope: tuple[str, ...],
    bounce_address: str | None,
) -> Finding:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector tripping over a strange message: not a bounce we can read
        return Finding("unknown", key, label)
    if not (temporary or permanent):
        return Finding("unknown", key, label)
    text = _text_of(message)  # every text part decoded, once
    found = (*envelope, *_text_tokens(message, text, bounce_address))
    failed = sorted(permanent or temporary)
    recipient = failed[0].decode("ascii", "replace") if failed else None
    kind: Kind = "hard" if permanent else "soft"
    status = _status_code(text)
    if kind == "hard" and status.startswith("4"):
        status = ""  # a quoted 4.x.x in a permanent failure is not its status
    return Finding(kind, key, label, status, "", found, recipient)


# -- tokens --------------------------------------------------------------------------


def _envelope_tokens(message: Message, bounce_address: str | None) -> Iterator[str]:
    """Tokens in the addresses the bounce was delivered to (the VERP return path)."""
    if bounce_address is None:
        return
    for header in _ENVELOPE_HEADERS:
        for _name, address in getaddresses(message.get_all(header) or []):
            token = tokens.token_in_address(bounce_address, address)
            if token is not None:
                yield token


def _returned_tokens(message: Message, bounce_address: str | None) -> Iterator[str]:
    """Tokens in the original's headers a report returns (text/rfc822-headers, message/rfc822)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            original = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(original, Message):
                yield from _original_tokens(original, bounce_address)
        elif kind in ("text/rfc822-headers", "text/rfc822-header"):
            raw = _payload_bytes(part)
            original = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
            yield from _original_tokens(original, bounce_address)


def _original_tokens(original: Message, bounce_address: str | None) -> Iterator[str]:
    for value in original.get_all(DELIVERY_HEADER) or []:
        yield str(value).strip()
    if bounce_address is not None:
        for header in ("Return-Path", "Sender", "Errors-To"):
            for _name, address in getaddresses(original.get_all(header) or []):
                token = tokens.token_in_address(bounce_address, address)
                if token is not None:
                    yield token


def _text_tokens(message: Message, text: str, bounce_address: str | None) -> Iterator[str]:
    """Tokens quoted anywhere in a non-standard bounce's *text* (its copy of the original)."""
    for match in _TOKEN_HEADER.finditer(text):
        yield match.group(1)
    if bounce_address is not None:
        local, _at, domain = bounce_address.partition("@")
        pattern = re.compile(
            rf"{re.escape(local)}\+([0-9a-fA-F.]+)@{re.escape(domain)}", re.IGNORECASE
        )
        for match in pattern.finditer(text):
            yield match.group(1)
    yield from _returned_tokens(message, bounce_address)


def _text_of(message: Message) -> str:
    chunks = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            chunks.append(_decode(_payload_bytes(part), part.get_content_charset()))
    return "\n".join(chunks)


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", "replace")


def _payload_bytes(part: Message) -> bytes:
    raw = part.get_payload(decode=True)
    return raw if isinstance(raw, bytes) else b""

"""Compose digest messages: the MIME bytes are built once per digest, then personalised.

Building an `EmailMessage` per recipient manages about 200 messages a second;
a digest goes to thousands. So the message is split once into encoded static
pieces and per-recipient slots (To, Message-ID, the unsubscribe URL), and each
recipient's bytes are a join. The bodies are quoted-printable: each static
piece is encoded on its own and ends in a soft line break, so a value spliced
between two pieces decodes exactly as if the whole body had been encoded.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from html import escape
from urllib.parse import quote

from publisher.config import SiteConfig
from publisher.errors import ConfigError
from publisher.mail.digest import UNSUBSCRIBE_PLACEHOLDER
from publisher.model import Message, RenderedDigest, Subscriber

CRLF = b"\r\n"
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")


@dataclass(frozen=True, slots=True)
class MailSettings:
    """What composing needs from the site's [digest] settings."""

    sender: str  # "Name <address>"
    reply_to: str | None
    list_name: str
    list_id: str
    unsubscribe_url: str  # https; the token is appended as ?token=
    unsubscribe_mailto: str | None


@dataclass(frozen=True, slots=True)
class _Body:
    """A QP-encoded body as static pieces; slot i goes between piece i and piece i+1."""

    pieces: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One digest's message with holes for each recipient's values."""

    digest_id: int
    envelope_sender: str
    message_id_domain: str
    head: bytes  # headers common to every recipient, CRLF-terminated
    text: _Body
    html: _Body
    boundary: bytes
    settings: MailSettings
    site_key: str


def message_id(digest_id: int, subscriber_id: int, *, domain: str, site_key: str) -> str:
    """Deterministic per (digest, subscriber): a resend carries the same id, so it is detectable."""
    return f"<digest-{digest_id}.{subscriber_id}.{site_key}@{domain}>"


def address_domain(mailbox: str) -> str:
    """The domain of *mailbox* ("Name <a@b>", "a@b (Comment)"), lower-cased; "localhost" if none.

    The one place a sender's domain is worked out: the ledger's Message-ID, the
    message's header and the confirmation's must agree.
    """
    _name, address = parseaddr(mailbox)
    _local, at, domain = address.rpartition("@")
    return domain.lower() if at and domain else "localhost"


def site_key(list_id: str) -> str:
    return hashlib.sha256(list_id.encode()).hexdigest()[:12]


def prepare(
    digest_id: int, rendered: RenderedDigest, settings: MailSettings, *, date: datetime
) -> MessageTemplate:
    """Encode everything that is the same for every recipient, once."""
    _name, envelope_sender = parseaddr(settings.sender)
    domain = address_domain(settings.sender)
    key = site_key(settings.list_id)
    boundary = f"==publisher-{digest_id}-{key}==".encode()
    headers = [
        _header("From", _mailbox(settings.sender)),
        _header("Subject", _encoded_text("Subject", rendered.subject)),
        _header("Date", format_datetime(date)),
        _header("MIME-Version", "1.0"),
        _header("List-Id", f"{_phrase(settings.list_name)} <{settings.list_id}>"),
        _header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    if settings.reply_to:
        headers.append(_header("Reply-To", _mailbox(settings.reply_to)))
    headers.append(
        _header("Content-Type", f'multipart/alternative; boundary="{boundary.decode()}"')
    )
    return MessageTemplate(
        digest_id=digest_id,
        envelope_sender=envelope_sender,
        message_id_domain=domain,
        head=b"".join(headers),
        text=_split_body(rendered.text),
        html=_split_body(rendered.html),
        boundary=boundary,
        settings=settings,
        site_key=key,
    )


def personalise(
    template: MessageTemplate,
    subscriber: Subscriber,
    token: str,
    *,
    message_id_override: str | None = None,
) -> Message:
    """This recipient's message: the prepared pieces joined around their values.

    *message_id_override* replaces the deterministic Message-ID, for a message
    that is no delivery of the digest (a test, which must not look like a resend).
    """
    settings = template.settings
    url = _with_token(settings.unsubscribe_url, token)
    list_unsubscribe = f"<{url}>"
    if settings.unsubscribe_mailto:
        subject = quote(f"unsubscribe {token}")
        list_unsubscribe += f", <mailto:{settings.unsubscribe_mailto}?subject={subject}>"
    mid = message_id_override or message_id(
        template.digest_id,
        subscriber.id,
        domain=template.message_id_domain,
        site_key=template.site_key,
    )
    boundary = template.boundary
    text_url = _qp(url.encode())
    html_url = _qp(escape(url).encode())
    data = b"".join(
        (
            _header("To", _mailbox_of(subscriber.name, subscriber.email)),
            _header("Message-ID", mid),
            _header("List-Unsubscribe", list_unsubscribe),
            template.head,
            CRLF,
            b"--",
            boundary,
            CRLF,
            b'Content-Type: text/plain; charset="utf-8"',
            CRLF,
            b"Content-Transfer-Encoding: quoted-printable",
            CRLF,
            CRLF,
            _fill(template.text, text_url),
            CRLF,
            b"--",
            boundary,
            CRLF,
            b'Content-Type: text/html; charset="utf-8"',
            CRLF,
            b"Content-Transfer-Encoding: quoted-printable",
            CRLF,
            CRLF,
            _fill(template.html, html_url),
            CRLF,
            b"--",
            boundary,
            b"--",
            CRLF,
        )
    )
    return Message(
        digest_id=template.digest_id,
        subscriber_id=subscriber.id,
        sender=template.envelope_sender,
        recipient=subscriber.email,
        message_id=mid,
        data=data,
    )


def unsubscribe_link(unsubscribe_url: str, token: str) -> str:
    return _with_token(unsubscribe_url, token)


def with_unsubscribe_link(rendered: RenderedDigest, link: str) -> RenderedDigest:
    """*rendered* with *link* where each recipient's own goes: a preview to look at."""
    return replace(
        rendered,
        text=rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, link),
        html=rendered.html.replace(UNSUBSCRIBE_PLACEHOLDER, escape(link)),
    )


def _with_token(url: str, token: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}token={quote(token, safe='')}"


def _split_body(body: str) -> _Body:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    parts = text.split(UNSUBSCRIBE_PLACEHOLDER)
    return _Body(tuple(_qp(part.encode("utf-8")) for part in parts))


def _fill(body: _Body, value: bytes) -> bytes:
    # Each piece ends in a soft line break ("=" CRLF), which decodes to nothing.
    soft = b"=" + CRLF
    out: list[bytes] = []
    for index, piece in enumerate(body.pieces):
        if index:
            out.extend((value, soft))
        out.extend((piece, soft))
    return b"".join(out)


def _qp(data: bytes) -> bytes:
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", CRLF)


def _header(name: str, value: str) -> bytes:
    return f"{name}: {value}".encode("ascii") + CRLF


def _encoded_text(name: str, value: str) -> str:
    """An unstructured header value: RFC 2047 encoded words when not ASCII, folded."""
    value = " ".join(value.split())  # no CR/LF can reach a header
    if value.isascii() and len(value) + len(name) < 76:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _phrase(text: str) -> str:
    text = " ".join(text.split())
    if text.isascii():
        if _ATEXT_PHRASE.match(text):
            return text
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}"'
    return Header(text, "utf-8").encode(linesep="\r\n")


def _mailbox(value: str) -> str:
    name, address = parseaddr(value)
    return _mailbox_of(name, address)


def _mailbox_of(name: str, address: str) -> str:
    name = " ".join(name.split())
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    return formataddr((name, address), charset="utf-8")


def compose_single(
    sender: str,
    recipient: str,
    subject: str,
    *,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    outbox_name: str,
) -> Message:
    """One transactional message (a sign-up confirmation): built whole, as it is sent once."""
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["From"] = _mailbox(sender)
    message["To"] = recipient
    message["Subject"] = " ".join(subject.split())
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    _name, envelope_sender = parseaddr(sender)
    return Message(
        digest_id=0,
        subscriber_id=0,
        sender=envelope_sender,
        recipient=recipient,
        message_id=message_id,
        data=message.as_bytes(),
        outbox_name=outbox_name,
    )


def mail_settings(site: SiteConfig) -> MailSettings:
    """:raises ConfigError: when no sender address is configured."""
    sender = site.digest.sender
    if sender is None:
        message = (
            "[digest] from: missing; digests need a sender such as "
            "'Meridian Briefing <briefing@example.org>' (or set [site] author_email)"
        )
        raise ConfigError(site.display_path, message)
    return MailSettings(
        sender=sender,
        reply_to=site.digest.reply_to,
        list_name=site.title,
        list_id=site.digest.list_id,
        unsubscribe_url=site.digest.unsubscribe_url,
        unsubscribe_mailto=site.digest.unsubscribe_mailto,
    )

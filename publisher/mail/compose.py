"""Compose digest messages: the MIME bytes are built once per digest, then personalised.

Building an `EmailMessage` per recipient manages about 200 messages a second;
a digest goes to thousands. So the message is split once into encoded static
pieces and per-recipient slots (To, Message-ID, the unsubscribe URL and the
preferences page's, both with the recipient's token), and each recipient's
bytes are a join. The bodies are quoted-printable: each static
piece is encoded on its own and ends in a soft line break, so a value spliced
between two pieces decodes exactly as if the whole body had been encoded.

With [delivery.dkim], each piece's canonical form for the body hash is made
once too (every piece is whole lines), and a recipient's signature costs the
hash of ~80 KB, the canonical form of a few short lines and one private-key
operation (`mail.signing`). With [bounces] address, the envelope sender is
the VERP address naming the delivery, and X-Publisher-Delivery names it too.
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

from publisher import tokens
from publisher.config import SiteConfig
from publisher.errors import ConfigError
from publisher.mail import signing
from publisher.mail.digest import PREFERENCES_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER
from publisher.mail.signing import DkimKey
from publisher.model import Message, RenderedDigest, Subscriber

CRLF = b"\r\n"
SOFT_BREAK = b"=" + CRLF  # quoted-printable's soft line break: decodes to nothing
DELIVERY_HEADER = "X-Publisher-Delivery"
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
# Where each recipient's links go, in the order of the values a slot is filled with.
PLACEHOLDERS = (UNSUBSCRIBE_PLACEHOLDER, PREFERENCES_PLACEHOLDER)
_PLACEHOLDER = re.compile("|".join(PLACEHOLDERS))


@dataclass(frozen=True, slots=True)
class MailSettings:
    """What composing needs from the site's [digest] settings."""

    sender: str  # "Name <address>"
    reply_to: str | None
    list_name: str
    list_id: str
    unsubscribe_url: str  # https; the token is appended as ?token=
    unsubscribe_mailto: str | None
    preferences_url: str  # https; the same token appended as ?token=
    dkim: DkimKey | None = None  # sign every message with it
    bounce_address: str | None = None  # [bounces] address: the base of the VERP senders


@dataclass(frozen=True, slots=True)
class _Body:
    """A QP-encoded body as static pieces; slot i goes between piece i and piece i+1.

    Slot i holds the value of PLACEHOLDERS[slots[i]]. Each piece ends in a
    soft line break; *canonical* holds each piece's relaxed form (RFC 6376
    §3.4.4) when the messages are signed.
    """

    pieces: tuple[bytes, ...]
    slots: tuple[int, ...] = ()
    canonical: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class _Canonical:
    """What signing needs of a template, made once: the static fields' and lines' forms."""

    fields: tuple[tuple[str, bytes], ...]  # (name, value) of the head's fields
    opening: bytes
    middle: bytes
    closing: bytes


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """One digest's message with holes for each recipient's values."""

    digest_id: int
    envelope_sender: str
    message_id_domain: str
    head: bytes  # headers common to every recipient, CRLF-terminated
    text: _Body
    html: _Body
    settings: MailSettings
    site_key: str
    opening: bytes  # the body up to the text part's content
    middle: bytes  # from the end of the text part's content to the HTML part's
    closing: bytes  # after the HTML part's content
    timestamp: int  # the signatures' t=: the Date
    canonical: _Canonical | None  # None: the messages are not signed


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
    fields = [
        ("From", _mailbox(settings.sender)),
        ("Subject", _encoded_text("Subject", rendered.subject)),
        ("Date", format_datetime(date)),
        ("MIME-Version", "1.0"),
        ("List-Id", f"{_phrase(settings.list_name)} <{settings.list_id}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    if settings.reply_to:
        fields.append(("Reply-To", _mailbox(settings.reply_to)))
    fields.append(("Content-Type", f'multipart/alternative; boundary="{boundary.decode()}"'))
    is_signed = settings.dkim is not None
    opening = b"--" + boundary + CRLF + _part_head("plain")
    middle = CRLF + b"--" + boundary + CRLF + _part_head("html")
    closing = CRLF + b"--" + boundary + b"--" + CRLF
    canonical = None
    if is_signed:
        canonical = _Canonical(
            fields=tuple((n, v.encode("ascii")) for n, v in fields),
            opening=signing.canonical_lines(opening),
            middle=signing.canonical_lines(middle),
            closing=signing.canonical_lines(closing),  # a last line that is not empty
        )
    return MessageTemplate(
        digest_id=digest_id,
        envelope_sender=envelope_sender,
        message_id_domain=domain,
        head=b"".join(_header(name, value) for name, value in fields),
        text=_split_body(rendered.text, canonical=is_signed),
        html=_split_body(rendered.html, canonical=is_signed),
        settings=settings,
        site_key=key,
        opening=opening,
        middle=middle,
        closing=closing,
        timestamp=int(date.timestamp()),
        canonical=canonical,
    )


def _part_head(subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"'.encode("ascii")
        + CRLF
        + b"Content-Transfer-Encoding: quoted-printable"
        + CRLF
        + CRLF
    )


def personalise(
    template: MessageTemplate,
    subscriber: Subscriber,
    token: str,
    *,
    bounce_token: str | None = None,
    message_id_override: str | None = None,
) -> Message:
    """This recipient's message: the prepared pieces joined around their values.

    *bounce_token* (`tokens.bounce_token` of this delivery) makes the envelope
    sender the VERP address and goes in X-Publisher-Delivery, when the site has
    a [bounces] address; without one the plain bounce address is the sender.
    *message_id_override* replaces the deterministic Message-ID, for a message
    that is no delivery of the digest (a test, which must not look like a resend).
    """
    settings = template.settings
    url = _with_token(settings.unsubscribe_url, token)
    preferences = _with_token(settings.preferences_url, token)
    list_unsubscribe = f"<{url}>"
    if settings.unsubscribe_mailto:
        subject = quote(f"unsubscribe {token}")
        # Folded before the second URI (RFC 5322 §2.2.3), which keeps the line under 998.
        list_unsubscribe += f",\r\n <mailto:{settings.unsubscribe_mailto}?subject={subject}>"
    mid = message_id_override or message_id(
        template.digest_id,
        subscriber.id,
        domain=template.message_id_domain,
        site_key=template.site_key,
    )
    own = [
        ("To", _mailbox_of(subscriber.name, subscriber.email)),
        ("Message-ID", mid),
        ("List-Unsubscribe", list_unsubscribe),
    ]
    sender = envelope_sender(template.envelope_sender, settings.bounce_address, bounce_token)
    if settings.bounce_address is not None and bounce_token is not None:
        own.append((DELIVERY_HEADER, bounce_token))
    # The values go in as lines of their own, each followed by a soft line break.
    text_urls = tuple(_qp(link.encode()) + SOFT_BREAK for link in (url, preferences))
    html_urls = tuple(_qp(escape(link).encode()) + SOFT_BREAK for link in (url, preferences))
    data = b"".join(
        (
            _signature(template, own, text_urls, html_urls),
            *(_header(name, value) for name, value in own),
            template.head,
            CRLF,
            template.opening,
            *_interleave(template.text.pieces, template.text.slots, text_urls),
            template.middle,
            *_interleave(template.html.pieces, template.html.slots, html_urls),
            template.closing,
        )
    )
    return Message(
        digest_id=template.digest_id,
        subscriber_id=subscriber.id,
        sender=sender,
        recipient=subscriber.email,
        message_id=mid,
        data=data,
    )


def envelope_sender(sender: str, bounce_address: str | None, bounce_token: str | None) -> str:
    """SMTP MAIL FROM: the VERP address of *bounce_token*, the bounce address, or the sender."""
    if bounce_address is None:
        return sender
    if bounce_token is None:
        return bounce_address
    return tokens.bounce_address(bounce_address, bounce_token)


def _signature(
    template: MessageTemplate,
    own: list[tuple[str, str]],
    text_urls: tuple[bytes, ...],
    html_urls: tuple[bytes, ...],
) -> bytes:
    """The DKIM-Signature field of one recipient's message, or nothing when unsigned.

    The body hash runs over the canonical pieces made once and the canonical
    form of this recipient's few lines: the same bytes dkimpy's relaxed body
    canonicalisation makes of the whole body (tests/mail/test_signing.py).
    """
    canonical, key = template.canonical, template.settings.dkim
    if canonical is None or key is None:
        return b""
    signed = signing.signed_fields(
        [*canonical.fields, *((name, value.encode("ascii")) for name, value in own)]
    )
    text, html = template.text, template.html
    bh = signing.body_hash(
        (
            canonical.opening,
            *_interleave(
                text.canonical, text.slots, tuple(map(signing.canonical_lines, text_urls))
            ),
            canonical.middle,
            *_interleave(
                html.canonical, html.slots, tuple(map(signing.canonical_lines, html_urls))
            ),
            canonical.closing,
        )
    )
    return signing.signature_header(key, signed, bh, timestamp=template.timestamp)


def unsubscribe_link(unsubscribe_url: str, token: str) -> str:
    return _with_token(unsubscribe_url, token)


def preferences_link(preferences_url: str, token: str) -> str:
    """The recipient's own preferences page: the unsubscribe token, on [digest] preferences_url."""
    return _with_token(preferences_url, token)


def with_unsubscribe_link(
    rendered: RenderedDigest, link: str, preferences: str | None = None
) -> RenderedDigest:
    """*rendered* with *link* where each recipient's unsubscribe link goes: a preview to look at.

    *preferences* goes where their preferences link goes; without it, *link*
    stands there too, so that no placeholder is ever shown.
    """
    shown = link if preferences is None else preferences
    return replace(
        rendered,
        text=rendered.text.replace(UNSUBSCRIBE_PLACEHOLDER, link).replace(
            PREFERENCES_PLACEHOLDER, shown
        ),
        html=rendered.html.replace(UNSUBSCRIBE_PLACEHOLDER, escape(link)).replace(
            PREFERENCES_PLACEHOLDER, escape(shown)
        ),
    )


def _with_token(url: str, token: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}token={quote(token, safe='')}"


def _split_body(body: str, *, canonical: bool) -> _Body:
    """The body cut at each placeholder; QP-encoded piece by piece, each piece whole lines.

    Cut before encoding: a placeholder encoded with the text around it could
    be broken by a soft line break, and found no more.
    """
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    parts = _PLACEHOLDER.split(text)
    slots = tuple(PLACEHOLDERS.index(found) for found in _PLACEHOLDER.findall(text))
    # Each piece ends in a soft line break, so each is whole lines.
    pieces = tuple(_qp(part.encode("utf-8")) + SOFT_BREAK for part in parts)
    forms = tuple(signing.canonical_lines(piece) for piece in pieces) if canonical else ()
    return _Body(pieces, slots, forms)


def _interleave(
    pieces: tuple[bytes, ...], slots: tuple[int, ...], values: tuple[bytes, ...]
) -> list[bytes]:
    """*pieces* with the value each slot between them holds (each ends in a soft line break)."""
    out: list[bytes] = []
    for index, piece in enumerate(pieces):
        if index:
            out.append(values[slots[index - 1]])
        out.append(piece)
    return out


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
    dkim: DkimKey | None = None,
    bounce_address: str | None = None,
    bounce_token: str | None = None,
) -> Message:
    """One transactional message (a sign-up confirmation): built whole, as it is sent once.

    Signed with *dkim* when given (the whole-message path: it is one message);
    the envelope sender as in :func:`envelope_sender`.
    """
    from email.message import EmailMessage
    from email.policy import SMTP

    message = EmailMessage(policy=SMTP)
    message["From"] = _mailbox(sender)
    message["To"] = recipient
    message["Subject"] = " ".join(subject.split())
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    if bounce_address is not None and bounce_token is not None:
        message[DELIVERY_HEADER] = bounce_token
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    _name, address = parseaddr(sender)
    data = message.as_bytes()
    if dkim is not None:
        data = signing.sign_message(dkim, data, timestamp=int(date.timestamp()))
    return Message(
        digest_id=0,
        subscriber_id=0,
        sender=envelope_sender(address, bounce_address, bounce_token),
        recipient=recipient,
        message_id=message_id,
        data=data,
        outbox_name=outbox_name,
    )


def mail_settings(site: SiteConfig) -> MailSettings:
    """What composing needs, the DKIM key read and checked.

    :raises ConfigError: when no sender address is configured, or for a bad DKIM key.
    """
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
        preferences_url=site.digest.preferences_url,
        dkim=signing.site_key(site),
        bounce_address=site.bounces.address,
    )

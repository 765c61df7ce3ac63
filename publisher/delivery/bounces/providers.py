"""Provider webhooks, checked and read: Amazon SES through SNS, Postmark, Mailgun.

Each check raises ForgedError (answered 401) for a request that is not the
provider's, or MalformedError (400) for one that cannot be read; either changes
nothing. What passes becomes Bounce values (actions.py) with the provider's
event id as the idempotency key, so a retried event counts once. A bounce
is attributed by the bounce token the event carries (SES: the original's
X-Publisher-Delivery in mail.headers; Postmark: Metadata or Headers;
Mailgun: user-variables), else by its recipient when that is an active
subscriber (the request is authenticated; the ledger row is updated only
through a token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from publisher.delivery.bounces.actions import Bounce, BounceKind
from publisher.delivery.bounces.reading import DELIVERY_HEADER
from publisher.output import atomic_write

logger = logging.getLogger(__name__)

MAILGUN_MAX_AGE = timedelta(minutes=5)
# Where SNS keeps its signing certificates (AWS, "Verifying the signatures of
# Amazon SNS messages"): nothing else may be fetched or trusted.
SNS_CERT_URL = re.compile(
    r"https://sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?/SimpleNotificationService-[0-9a-f]+\.pem"
)
SNS_SUBSCRIBE_URL = re.compile(r"https://sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?/\?.*")
_TOKEN_KEYS = ("publisher-delivery", "x-publisher-delivery", "publisher_delivery")


class ForgedError(Exception):
    """A request that is not the provider's: bad credentials or signature, a replay."""


class MalformedError(Exception):
    """A request the provider would not send: not JSON, or missing what it must hold."""


def _field(data: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        message = f"{what}: missing or not a {kind.__name__}: {key!r}"
        raise MalformedError(message)
    return value


def read_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        message = f"not JSON ({err})"
        raise MalformedError(message) from None
    if not isinstance(data, dict):
        message = "expected a JSON object"
        raise MalformedError(message)
    return data


def _token_in(mapping: Any) -> str | None:
    """A bounce token under one of the names our messages give it, in a dict or a header list."""
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            if str(key).lower() in _TOKEN_KEYS and isinstance(value, str):
                return value.strip()
    if isinstance(mapping, list):
        for header in mapping:
            if not isinstance(header, dict):
                continue
            name = header.get("name", header.get("Name"))
            value = header.get("value", header.get("Value"))
            if isinstance(name, str) and name.lower() == DELIVERY_HEADER.lower():
                return str(value).strip()
    return None


# -- Postmark ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    user: str
    password: str

    def check(self, authorization: str | None) -> None:
        """HTTP basic auth (RFC 7617), compared in constant time.

        :raises ForgedError: for a missing or wrong Authorization header.
        """
        scheme, _space, encoded = (authorization or "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            given = b""
        expected = f"{self.user}:{self.password}".encode()
        if scheme.lower() != "basic" or not hmac.compare_digest(given, expected):
            message = "wrong or missing credentials"
            raise ForgedError(message)


_POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
_POSTMARK_SOFT = frozenset({"SoftBounce", "Transient", "DnsError", "Undeliverable"})


def postmark_bounces(data: Mapping[str, Any]) -> list[Bounce]:
    """The bounce or complaint of a Postmark webhook (none for the types that are neither)."""
    record = _field(data, "RecordType", str, "Postmark")
    event_id = data.get("ID")
    if not isinstance(event_id, int | str) or isinstance(event_id, bool):
        message = "Postmark: missing or not a number: 'ID'"
        raise MalformedError(message)
    email = _field(data, "Email", str, "Postmark")
    kind: BounceKind | None = None
    detail = ""
    if record == "SpamComplaint":
        kind = "complaint"
    elif record == "Bounce":
        bounce_type = _field(data, "Type", str, "Postmark")
        kind = "hard" if bounce_type in _POSTMARK_HARD else None
        kind = "soft" if bounce_type in _POSTMARK_SOFT else kind
        detail = bounce_type
    if kind is None:
        return []
    token = _token_in(data.get("Metadata")) or _token_in(data.get("Headers"))
    status = _status_in(str(data.get("Details") or ""))
    return [
        Bounce(
            kind,
            f"postmark {record} {event_id}",
            f"webhook postmark event {event_id}",
            status=status,
            detail="" if status else detail,
            token=token,
            recipient=email,
        )
    ]


def _status_in(text: str) -> str:
    match = re.search(r"\b[245]\.\d{1,3}\.\d{1,3}\b", text)
    return match.group(0) if match else ""


# -- Mailgun -------------------------------------------------------------------------


def mailgun_signature(data: Mapping[str, Any], key: str, *, now: datetime) -> str:
    """Check a Mailgun webhook's signature; returns its token (the replay nonce).

    signature = HMAC-SHA256(signing key, timestamp + token), the timestamp
    within MAILGUN_MAX_AGE of *now* (either way).

    :raises ForgedError: for a wrong signature or a stale timestamp.
    :raises MalformedError: for a missing signature block.
    """
    block = _field(data, "signature", dict, "Mailgun")
    timestamp = _field(block, "timestamp", str, "Mailgun signature")
    token = _field(block, "token", str, "Mailgun signature")
    signature = _field(block, "signature", str, "Mailgun signature")
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        message = "signature does not match"
        raise ForgedError(message)
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError):
        message = f"timestamp is not a number ({timestamp!r})"
        raise ForgedError(message) from None
    if abs(now - sent) > MAILGUN_MAX_AGE:
        message = f"timestamp {timestamp} is more than 5 minutes from now"
        raise ForgedError(message)
    return str(token)


def mailgun_bounces(data: Mapping[str, Any]) -> list[Bounce]:
    """The failure or complaint in a Mailgun webhook's event-data (none for other events)."""
    event = _field(data, "event-data", dict, "Mailgun")
    name = _field(event, "event", str, "Mailgun event-data")
    event_id = _field(event, "id", str, "Mailgun event-data")
    recipient = _field(event, "recipient", str, "Mailgun event-data")
    kind: BounceKind | None = None
    status = ""
    if name == "complained":
        kind = "complaint"
    elif name == "failed":
        severity = event.get("severity")
        kind = "hard" if severity == "permanent" else "soft" if severity == "temporary" else None
        delivery = event.get("delivery-status")
        if isinstance(delivery, dict):
            status = str(delivery.get("enhanced-code") or "")
    if kind is None:
        return []
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    token = _token_in(event.get("user-variables")) or _token_in(headers)
    return [
        Bounce(
            kind,
            f"mailgun {event_id}",
            f"webhook mailgun event {event_id}",
            status=_status_in(status),
            token=token,
            recipient=recipient,
        )
    ]


# -- Amazon SES through SNS ----------------------------------------------------------

_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_SIGNED_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION_KEYS,
    "UnsubscribeConfirmation": _CONFIRMATION_KEYS,
}


def sns_canonical(data: Mapping[str, Any]) -> bytes:
    """The string SNS signs: "Key\\nValue\\n" for each signed key, in order (AWS docs).

    Subject is signed only when the message has one.
    """
    kind = _field(data, "Type", str, "SNS")
    if kind not in _SIGNED_KEYS:
        message = f"SNS: unknown Type {kind!r}"
        raise MalformedError(message)
    lines = []
    for key in _SIGNED_KEYS[kind]:
        if key == "Subject" and data.get(key) is None:
            continue
        lines.append(f"{key}\n{_field(data, key, str, 'SNS')}\n")
    return "".join(lines).encode()


class SnsVerifier:
    """Checks SNS messages for one topic against the certificates AWS signs them with.

    A certificate is fetched (over HTTPS, by *fetch*) only from a URL of the
    SNS pattern, once: it is kept in *cache_dir* under a hash of its URL.
    """

    def __init__(self, topic_arn: str, cache_dir: Path, fetch: Callable[[str], bytes]) -> None:
        self.topic_arn = topic_arn
        self.cache_dir = cache_dir
        self.fetch = fetch
        self._certificates: dict[str, Any] = {}  # by URL, parsed: read once a process

    def verify(self, data: Mapping[str, Any]) -> None:
        """:raises ForgedError: for another topic, a foreign certificate URL or a bad signature."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        canonical = sns_canonical(data)
        if data.get("TopicArn") != self.topic_arn:
            message = f"not the configured topic ({data.get('TopicArn')!r})"
            raise ForgedError(message)
        version = data.get("SignatureVersion")
        algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(version))
        if algorithm is None:
            message = f"unknown SignatureVersion {version!r}"
            raise ForgedError(message)
        url = _field(data, "SigningCertURL", str, "SNS")
        if not SNS_CERT_URL.fullmatch(url):
            message = f"SigningCertURL is not an SNS certificate ({url!r})"
            raise ForgedError(message)
        try:
            signature = base64.b64decode(_field(data, "Signature", str, "SNS"), validate=True)
        except (binascii.Error, ValueError):
            message = "Signature is not base64"
            raise ForgedError(message) from None
        key = self._certificate(url).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            message = "the certificate's key is not RSA"
            raise ForgedError(message)
        try:
            key.verify(signature, canonical, padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            message = "signature does not match"
            raise ForgedError(message) from None

    def _certificate(self, url: str) -> Any:
        from cryptography import x509

        known = self._certificates.get(url)
        if known is not None:
            return known
        path = self.cache_dir / f"{hashlib.sha256(url.encode()).hexdigest()}.pem"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = self.fetch(url)
            self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(path, data)  # requests run on several threads: a temp name of its own
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError:
            path.unlink(missing_ok=True)
            message = f"the certificate at {url} cannot be read"
            raise ForgedError(message) from None
        self._certificates[url] = certificate
        return certificate


def fetch_https(url: str) -> bytes:
    """GET *url* over verified TLS (the system's CAs); for SNS certificates."""
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        data: bytes = response.read(64 * 1024)
    return data


def ses_bounces(data: Mapping[str, Any]) -> list[Bounce]:
    """The bounces or complaint of an SES notification (SNS Message, already verified)."""
    message_id = _field(data, "MessageId", str, "SNS")
    try:
        event = json.loads(_field(data, "Message", str, "SNS"))
    except json.JSONDecodeError as err:
        message = f"SES: Message is not JSON ({err})"
        raise MalformedError(message) from None
    if not isinstance(event, dict):
        message = "SES: Message is not a JSON object"
        raise MalformedError(message)
    kind_name = event.get("notificationType") or event.get("eventType")
    mail = event.get("mail")
    token = _token_in(mail.get("headers")) if isinstance(mail, dict) else None
    if kind_name == "Bounce":
        bounce = _field(event, "bounce", dict, "SES")
        kind: BounceKind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        recipients = _field(bounce, "bouncedRecipients", list, "SES bounce")
        detail = str(bounce.get("bounceSubType") or "")
    elif kind_name == "Complaint":
        complaint = _field(event, "complaint", dict, "SES")
        kind = "complaint"
        recipients = _field(complaint, "complainedRecipients", list, "SES complaint")
        detail = str(complaint.get("complaintFeedbackType") or "")
    else:
        return []
    found = []
    for number, recipient in enumerate(recipients):
        if not isinstance(recipient, dict) or not isinstance(recipient.get("emailAddress"), str):
            message = "SES: a recipient without emailAddress"
            raise MalformedError(message)
        status = _status_in(str(recipient.get("status") or ""))
        found.append(
            Bounce(
                kind,
                f"ses {message_id} {number}",
                f"webhook ses event {message_id}",
                status=status,
                detail="" if status and kind != "complaint" else detail,
                token=token if len(recipients) == 1 else None,
                recipient=recipient["emailAddress"],
            )
        )
    return found

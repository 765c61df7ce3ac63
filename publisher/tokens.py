"""The site's secret, and what is made with it: unsubscribe tokens and suppression keys.

Below the stages, because composing, sending, the web service and the
command line all need them, and the store keeps only what they produce.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from publisher.errors import SubscriberError
from publisher.model import Subscriber

logger = logging.getLogger(__name__)

SECRET_ENV = "PUBLISHER_SECRET"
SECRET_FILE = "secret"
MIN_SECRET_LENGTH = 16
MAX_TOKEN_LENGTH = 200

# "<id>.<mac>": a positive id small enough for SQLite's 64-bit integers, and
# the 43 characters of an unpadded URL-safe base64 HMAC-SHA256.
_TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{43})")
BAD_TOKEN = "not a valid unsubscribe token"
TOKEN_WHERE = "TOKEN"


def has_secret(state_dir: Path) -> bool:
    """Whether there is a secret to load: $PUBLISHER_SECRET, or a file in *state_dir*."""
    return bool(os.environ.get(SECRET_ENV, "")) or (state_dir / SECRET_FILE).exists()


def load_secret(state_dir: Path, *, create: bool = True) -> bytes:
    """The key for unsubscribe tokens: $PUBLISHER_SECRET, else state_dir/secret.

    The file is made once, with mode 0600: written under a temporary name and
    published with os.link, which fails when another process got there first,
    so two processes starting at once agree on one secret and neither can read
    a half-written file. Changing the secret invalidates every link sent.
    Without *create* (a state shared by several machines, which must all sign
    with one secret) a missing secret is an error, not a new one.

    :raises SubscriberError: for a short $PUBLISHER_SECRET, an unusable file,
        or no secret where none may be made.
    """
    value = os.environ.get(SECRET_ENV, "")
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            message = (
                f"must be at least {MIN_SECRET_LENGTH} characters long (it has {len(value)}); "
                "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"
            )
            raise SubscriberError(SECRET_ENV, message)
        return value.encode("utf-8")
    path = state_dir / SECRET_FILE
    try:
        if not create and not path.exists():
            # The file holds the secret's bytes in hex: its text as PUBLISHER_SECRET
            # would be another secret, so the file itself is what is carried over.
            message = (
                f"not set, and there is no secret file at {path}: machines sharing a "
                "PostgreSQL state must sign links with one secret; set PUBLISHER_SECRET to "
                "the same value on each, or copy the same secret file to each (after "
                "`publisher state migrate`, the SQLite site's)"
            )
            raise SubscriberError(SECRET_ENV, message)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds subscriber data
        if not path.exists():
            _create_secret(path)
        return _read_secret(path)
    except OSError as err:
        message = f"cannot read or create the unsubscribe secret ({err.strerror or err})"
        raise SubscriberError(str(path), message) from err


def _create_secret(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_bytes(32).hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the new name durable where the OS allows
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _read_secret(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
        logger.warning("%s: was readable by others (mode %04o); changed it to 0600", path, mode)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        message = (
            "not a valid secret (expected 64 hexadecimal characters); restore it from a "
            "backup, or delete it to make a new one (links already sent then stop working)"
        )
        raise SubscriberError(str(path), message)
    return bytes.fromhex(text)


def fingerprint(secret: bytes) -> str:
    """A value that tells two secrets apart without revealing either (stored in a shared state)."""
    return hmac.new(secret, b"publisher secret fingerprint", hashlib.sha256).hexdigest()


def _mac(secret: bytes, subscriber_id: int, email: str) -> str:
    digest = hmac.new(
        secret, f"unsubscribe\0{subscriber_id}\0{email}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(secret: bytes, subscriber_id: int, email: str) -> str:
    """`<id>.<mac>`: safe in a URL query and a mailto subject, bound to the address."""
    return f"{subscriber_id}.{_mac(secret, subscriber_id, email)}"


def parse_token(token: str) -> tuple[int, str]:
    """(subscriber id, mac) of a well-formed token; says nothing about its validity.

    :raises SubscriberError: for anything that is not a whole token.
    """
    match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise SubscriberError(TOKEN_WHERE, BAD_TOKEN)
    return int(match.group(1)), match.group(2)


def check_token(secret: bytes, token: str, subscriber: Subscriber) -> bool:
    """Whether *token* was made with *secret* for exactly this subscriber."""
    try:
        subscriber_id, mac = parse_token(token)
    except SubscriberError:
        return False
    expected = _mac(secret, subscriber.id, subscriber.email)
    return subscriber_id == subscriber.id and hmac.compare_digest(mac, expected)


def suppression_key(secret: bytes, email: str) -> str:
    """The keyed hash a suppression entry stores instead of the address.

    Case-insensitive, as addresses are matched (RFC 5321 §2.4: see mail.subscribers). Keyed with
    the site secret, so the table alone cannot be checked against a list of
    guessed addresses; domain-separated from the unsubscribe MACs.
    """
    message = f"suppress\0{email.lower()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


# "<digest>.<subscriber>.<mac>" in a VERP local part: lower-case hex, because
# some relays fold the case of local parts, and short enough (at most 48
# characters) that "bounces+<token>" stays within RFC 5321's 64 octets.
_BOUNCE_TOKEN = re.compile(r"(0|[1-9][0-9]{0,14})\.([1-9][0-9]{0,14})\.([0-9a-f]{16})")
BOUNCE_MAC_LENGTH = 16


def _bounce_mac(secret: bytes, digest_id: int, subscriber_id: int) -> str:
    message = f"bounce\0{digest_id}\0{subscriber_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:BOUNCE_MAC_LENGTH]


def bounce_token(secret: bytes, digest_id: int, subscriber_id: int) -> str:
    """The token a message's bounce address carries: which delivery it was, unforgeable.

    Ids above 15 digits are refused by :func:`read_bounce_token`; a site never gets near.

    *digest_id* 0 stands for a message that belongs to no digest (a test or a
    confirmation to a known subscriber). Domain-separated from the other MACs.
    """
    return f"{digest_id}.{subscriber_id}.{_bounce_mac(secret, digest_id, subscriber_id)}"


def read_bounce_token(secret: bytes, token: str) -> tuple[int, int] | None:
    """(digest id, subscriber id) of a token made with *secret*; None for anything else."""
    match = _BOUNCE_TOKEN.fullmatch(token.lower()) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        return None
    digest_id, subscriber_id = int(match.group(1)), int(match.group(2))
    expected = _bounce_mac(secret, digest_id, subscriber_id)
    return (digest_id, subscriber_id) if hmac.compare_digest(match.group(3), expected) else None


def bounce_address(base: str, token: str) -> str:
    """`bounces@example.org` with *token* → `bounces+<token>@example.org` (VERP)."""
    local, _at, domain = base.rpartition("@")
    return f"{local}+{token}@{domain}"


def token_in_address(base: str, address: str) -> str | None:
    """The token of a VERP *address* made from *base*; None if it is not one of them.

    Case-insensitive in both parts: bounces come back through relays that fold it.
    """
    local, _at, domain = base.lower().rpartition("@")
    candidate = address.strip().strip("<>").lower()
    prefix, suffix = f"{local}+", f"@{domain}"
    if not (candidate.startswith(prefix) and candidate.endswith(suffix)):
        return None
    token = candidate[len(prefix) : len(candidate) - len(suffix)]
    return token or None

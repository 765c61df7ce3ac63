"""Subscribers: validated addresses, the unsubscribe secret and tokens, CSV in and out.

Library code for the `publisher subscribers …` and `publisher unsubscribe`
commands. Functions that write take an open Store and expect the caller to
hold `store.transaction()`, so that one command is one transaction.

Addresses are matched case-insensitively (RFC 5321 §2.4 allows a case-sensitive
local part but discourages relying on it): `Bob@example.org` and
`bob@example.org` are one subscriber, so an unsubscribe can never be undone by
re-importing the same address in other capitals.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

from email_validator import EmailNotValidError, validate_email

from publisher.errors import SubscriberError
from publisher.model import SUBSCRIBER_STATUSES, Subscriber
from publisher.store import Store

logger = logging.getLogger(__name__)

SECRET_ENV = "PUBLISHER_SECRET"
SECRET_FILE = "secret"
MIN_SECRET_LENGTH = 16
MAX_TOKEN_LENGTH = 200
MAX_NAME_LENGTH = 200
EXPORT_COLUMNS = ("email", "name", "status", "created_at")

AddOutcome = Literal["added", "name updated", "already subscribed"]

# C0 and C1 control characters and DEL: in an address they can only be a
# header injection attempt (CR/LF) or garbage; in a name, terminal escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# "<id>.<mac>": a positive id small enough for SQLite's 64-bit integers, and
# the 43 characters of an unpadded URL-safe base64 HMAC-SHA256.
_TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([A-Za-z0-9_-]{43})")
_BAD_TOKEN = "not a valid unsubscribe token"
_TOKEN_WHERE = "TOKEN"
_BOM = b"\xef\xbb\xbf"
_DELIMITERS = (",", ";", "\t")


# -- addresses and names -------------------------------------------------------------


def normalise_address(text: str, where: str) -> str:
    """The address in the form we store and send to: domain lower-case, ASCII only.

    An internationalised domain is stored in its IDNA (``xn--``) form and a
    non-ASCII local part is refused, because messages are composed as 7-bit
    headers and sent without SMTPUTF8.

    :raises SubscriberError: naming *where*, quoting the text and saying why.
    """
    stripped = text.strip(" ")
    reason = None
    if not stripped:
        reason = "it is empty"
    elif _CONTROL.search(stripped):
        reason = "it contains a line break or control character"
    else:
        try:
            info = validate_email(stripped, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as err:
            reason = str(err)
        else:
            return str(info.ascii_email or info.normalized)
    message = f"{text!r} is not a valid email address ({reason})"
    raise SubscriberError(where, message)


def normalise_name(text: str, where: str) -> str:
    """A display name on one line: whitespace runs (line breaks too) become one space.

    :raises SubscriberError: for other control characters or an overlong name.
    """
    name = " ".join(text.split())
    if _CONTROL.search(name):
        message = f"name {text!r} contains a control character"
        raise SubscriberError(where, message)
    if len(name) > MAX_NAME_LENGTH:
        message = f"name is longer than {MAX_NAME_LENGTH} characters ({len(name)})"
        raise SubscriberError(where, message)
    return name


def _key(address: str) -> str:
    return address.lower()


# -- the secret and tokens ------------------------------------------------------------


def load_secret(state_dir: Path) -> bytes:
    """The key for unsubscribe tokens: $PUBLISHER_SECRET, else state_dir/secret.

    The file is made once, with mode 0600: written under a temporary name and
    published with os.link, which fails when another process got there first,
    so two processes starting at once agree on one secret and neither can read
    a half-written file. Changing the secret invalidates every link sent.

    :raises SubscriberError: for a short $PUBLISHER_SECRET or an unusable file.
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
        raise SubscriberError(_TOKEN_WHERE, _BAD_TOKEN)
    return int(match.group(1)), match.group(2)


def check_token(secret: bytes, token: str, subscriber: Subscriber) -> bool:
    """Whether *token* was made with *secret* for exactly this subscriber."""
    try:
        subscriber_id, mac = parse_token(token)
    except SubscriberError:
        return False
    expected = _mac(secret, subscriber.id, subscriber.email)
    return subscriber_id == subscriber.id and hmac.compare_digest(mac, expected)


# -- suppressions -------------------------------------------------------------------

# Why an address may not be subscribed by the operator or an import, by the
# suppression entry's reason or the subscriber row's status.
_REFUSALS = {
    "unsubscribed": "asked not to receive the digest",
    "removed": "asked not to receive the digest",
    "complained": "reported the digest as spam",
    "bounced": "bounced earlier",
}
_ONLY_THEY = "only a sign-up they confirm themselves lifts this"


def suppression_key(secret: bytes, email: str) -> str:
    """The keyed hash a suppression entry stores instead of the address.

    Case-insensitive, as addresses are matched (module docstring). Keyed with
    the site secret, so the table alone cannot be checked against a list of
    guessed addresses; domain-separated from the unsubscribe MACs.
    """
    message = f"suppress\0{_key(email)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def suppress(store: Store, secret: bytes, email: str, reason: str, *, now: datetime) -> None:
    """Keep *email* from being subscribed again except by their own confirmed sign-up."""
    store.insert_suppression(suppression_key(secret, email), reason, now=now)


def _refusal(store: Store, secret: bytes, email: str, status: str | None) -> str | None:
    """Why *email* must not be subscribed for the operator, or None when it may be.

    *status* is that of the address's subscriber row, which speaks for itself
    (rows from before suppressions existed have no entry); without a row
    (None), the suppression entry decides.
    """
    if status is not None:
        reason = None if status == "active" else status
    else:
        reason = store.suppression_reason(suppression_key(secret, email))
    return None if reason is None else f"{email} {_REFUSALS[reason]}; skipped"


# -- operations -----------------------------------------------------------------------


def add_subscriber(
    store: Store, secret: bytes, address: str, name: str, *, now: datetime, where: str = "EMAIL"
) -> tuple[Subscriber, AddOutcome]:
    """Subscribe *address*, as the operator asked.

    An address that unsubscribed, bounced or was removed is refused: consent
    to mail it again can only come from the person, through a sign-up they
    confirm (`subscribe_confirmed`). A non-empty *name* replaces the stored one.

    :raises SubscriberError: for an invalid address or name, or a suppressed address.
    """
    email = normalise_address(address, where)
    name = normalise_name(name, where)
    existing = store.find_subscriber_any_case(email)
    refusal = _refusal(store, secret, email, existing.status if existing else None)
    if refusal is not None:
        message = f"{refusal} ({_ONLY_THEY})"
        raise SubscriberError(where, message)
    if existing is None:
        subscriber_id = store.insert_subscriber(email, name, status="active", now=now)
        return _get(store, subscriber_id), "added"
    if name and name != existing.name:
        store.set_subscriber_name(existing.id, name, now=now)
        return _get(store, existing.id), "name updated"
    return existing, "already subscribed"


def subscribe_confirmed(
    store: Store, secret: bytes, email: str, name: str, *, now: datetime
) -> Subscriber:
    """Make *email* active because its owner confirmed a sign-up; lifts any suppression.

    The one path that may undo an unsubscribe, a bounce or a removal (and
    forget the hard failures): the person proved they hold the address and
    asked for the digest. A non-empty *name* replaces the stored one.

    :raises SubscriberError: for an invalid address or name.
    """
    email = normalise_address(email, "email")
    name = normalise_name(name, "name")
    store.delete_suppression(suppression_key(secret, email))
    existing = store.find_subscriber_any_case(email)
    if existing is None:
        return _get(store, store.insert_subscriber(email, name, status="active", now=now))
    if name and name != existing.name:
        store.set_subscriber_name(existing.id, name, now=now)
    if existing.status != "active":
        store.set_subscriber_status(existing.id, "active", now=now)
        store.reset_hard_failures(existing.id)
    return _get(store, existing.id)


def remove_subscriber(
    store: Store, secret: bytes, address: str, *, now: datetime, where: str = "EMAIL"
) -> Subscriber:
    """Delete the subscriber, their delivery rows and sign-ups; returns who was removed.

    What stays is a suppression entry (a keyed hash, no address), so that
    neither an old list nor an `add` can subscribe them again. An entry made
    when they unsubscribed or bounced keeps that reason; a row from before
    entries existed gets one from its status.

    :raises SubscriberError: for an invalid address or one that is not subscribed.
    """
    email = normalise_address(address, where)
    existing = store.find_subscriber_any_case(email)
    if existing is None:
        message = f"no subscriber has the address {email!r}"
        raise SubscriberError(where, message)
    reason = "removed" if existing.status == "active" else existing.status
    suppress(store, secret, existing.email, reason, now=now)
    store.delete_subscriber(existing.id)
    store.delete_signups(existing.email)
    return existing


def token_owner(store: Store, secret: bytes, token: str) -> Subscriber:
    """The subscriber an unsubscribe token was made for.

    :raises SubscriberError: the same message for a malformed, forged or foreign
        token and for an unknown id.
    """
    subscriber_id, _ = parse_token(token)
    subscriber = store.get_subscriber(subscriber_id)
    if subscriber is None or not check_token(secret, token, subscriber):
        raise SubscriberError(_TOKEN_WHERE, _BAD_TOKEN)
    return subscriber


def unsubscribe(store: Store, secret: bytes, token: str, *, now: datetime) -> Subscriber:
    """Mark the token's subscriber unsubscribed and suppressed; doing it again changes nothing.

    Every failure gives the same message, so a token cannot be used to learn
    whether an id or an address exists.

    :raises SubscriberError: for a malformed, forged or foreign token, or an unknown id.
    """
    subscriber = token_owner(store, secret, token)
    suppress(store, secret, subscriber.email, "unsubscribed", now=now)
    if subscriber.status == "unsubscribed":
        return subscriber
    store.set_subscriber_status(subscriber.id, "unsubscribed", now=now)
    return replace(subscriber, status="unsubscribed")


def _get(store: Store, subscriber_id: int) -> Subscriber:
    subscriber = store.get_subscriber(subscriber_id)
    assert subscriber is not None, subscriber_id  # written in this same transaction
    return subscriber


# -- CSV ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did.

    `problems` are the bad rows, as `file.csv:LINE: problem`; `skipped_rows`
    the addresses refused because they opted out, as `file.csv:LINE: why`.
    """

    added: int
    already_present: int
    skipped_unsubscribed: int  # unsubscribed, bounced or removed: never resubscribed by import
    problems: tuple[str, ...] = ()
    skipped_rows: tuple[str, ...] = ()

    @property
    def good_rows(self) -> int:
        return self.added + self.already_present + self.skipped_unsubscribed


def import_csv(store: Store, secret: bytes, path: Path, *, now: datetime) -> ImportReport:
    """Add every good row of a CSV file with an `email` (and optional `name`) column.

    Bad rows and duplicates within the file are reported and left out; the
    rest goes in (the caller's transaction makes that all or nothing). An
    address already present is not touched, whatever its status: one that
    unsubscribed or bounced, or was removed (its suppression entry), is
    counted and skipped with a line saying why, because consent to mail it
    again cannot come from a list. For the same reason an optional `status`
    column (as `export_csv` writes) is honoured: a new address marked
    unsubscribed or bounced is recorded so, never as active, and counted as
    skipped. Accepts a UTF-8 BOM, CRLF line ends and `,`, `;` or tab delimiters.

    :raises SubscriberError: for a missing or unreadable file, one that is not
        UTF-8, or a header without an `email` column; nothing is imported then.
    """
    name = str(path)
    records = _records(name, _read_text(path))
    header = next(records, None)
    if header is None:
        message = "is empty; expected a header row with an 'email' column, e.g. 'email,name'"
        raise SubscriberError(name, message)
    email_column, name_column, status_column = _columns(name, header[1])

    existing = {_key(s.email): s.status for s in store.iter_subscribers()}
    seen: dict[str, int] = {}
    problems: list[str] = []
    skipped_rows: list[str] = []
    counts = {"added": 0, "present": 0, "skipped": 0}
    for line, row in records:
        where = f"{name}:{line}"
        try:
            email = normalise_address(_cell(row, email_column), where)
            person = normalise_name(_cell(row, name_column), where)
            wanted = _status(_cell(row, status_column), where)
        except SubscriberError as err:
            problems.append(str(err))
            continue
        key = _key(email)
        if key in seen:
            problems.append(f"{where}: duplicate of line {seen[key]} ({email!r})")
            continue
        seen[key] = line
        outcome, why = _import_one(store, secret, email, person, wanted, existing.get(key), now=now)
        counts[outcome] += 1
        if why is not None:
            skipped_rows.append(f"{where}: {why}")
    return ImportReport(
        counts["added"], counts["present"], counts["skipped"], tuple(problems), tuple(skipped_rows)
    )


def _import_one(
    store: Store,
    secret: bytes,
    email: str,
    name: str,
    wanted: str,
    status: str | None,
    *,
    now: datetime,
) -> tuple[Literal["added", "present", "skipped"], str | None]:
    """What importing one good row did, and why it was skipped if it was refused.

    *status* is that of the address's subscriber row, None when it has none.
    """
    if status == "active":
        return "present", None
    refusal = _refusal(store, secret, email, status)
    if refusal is not None:
        return "skipped", refusal
    # A new address marked unsubscribed or bounced (an export's status column)
    # is recorded so, never active, and no later import can subscribe it.
    store.insert_subscriber(email, name, status=wanted, now=now)
    return ("added", None) if wanted == "active" else ("skipped", None)


def _read_text(path: Path) -> str:
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise SubscriberError(where, "file not found") from err
    except IsADirectoryError as err:
        raise SubscriberError(where, "is a folder, not a CSV file") from err
    except OSError as err:
        message = f"cannot read the file ({err.strerror or err})"
        raise SubscriberError(where, message) from err
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line = data.count(b"\n", 0, offset) + 1
        where = f"{where}:{line}"
        message = (
            f"not UTF-8 (byte 0x{data[offset]:02x} at offset {offset}); "
            "save the file as UTF-8 CSV and import it again"
        )
        raise SubscriberError(where, message) from err


def _records(name: str, text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each non-blank record; the delimiter is the header's."""
    delimiter = _delimiter(re.split(r"\r\n|\r|\n", text.lstrip("\r\n"), maxsplit=1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            where = f"{name}:{reader.line_num}"
            message = f"not a readable CSV file ({err})"
            raise SubscriberError(where, message) from err
        if any(cell.strip() for cell in row):
            yield line, row
        line = reader.line_num + 1


def _delimiter(header: str) -> str:
    """The delimiter that makes an `email` column appear, else the most frequent one."""
    for delimiter in _DELIMITERS:
        if "email" in _names(next(csv.reader([header], delimiter=delimiter), [])):
            return delimiter
    return max(_DELIMITERS, key=header.count)


def _names(row: list[str]) -> list[str]:
    return [cell.strip().lower() for cell in row]


def _columns(name: str, header: list[str]) -> tuple[int, int | None, int | None]:
    names = _names(header)
    if "email" not in names:
        found = ", ".join(repr(cell) for cell in header)
        message = (
            f"the header row has no 'email' column (found {found}); expected 'email' "
            "and optionally 'name', e.g. 'email,name'"
        )
        if "@" in found:
            message += " (the first row looks like data: add a header row)"
        raise SubscriberError(name, message)
    return (
        names.index("email"),
        names.index("name") if "name" in names else None,
        names.index("status") if "status" in names else None,
    )


def _status(text: str, where: str) -> str:
    status = text.strip().lower() or "active"
    if status not in SUBSCRIBER_STATUSES:
        message = f"status {text!r} is not one of {', '.join(SUBSCRIBER_STATUSES)}"
        raise SubscriberError(where, message)
    return status


def _cell(row: list[str], column: int | None) -> str:
    return row[column] if column is not None and column < len(row) else ""


def export_csv(store: Store, stream: IO[str]) -> int:
    """Write every subscriber (any status) as CSV to *stream*; returns how many.

    Streamed from the database, so a long list is never held in memory. The
    columns are email, name, status, created_at (ISO 8601).
    """
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for subscriber in store.iter_subscribers():
        writer.writerow(
            (
                subscriber.email,
                subscriber.name,
                subscriber.status,
                subscriber.created_at.isoformat(),
            )
        )
        count += 1
    return count

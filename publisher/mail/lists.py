"""Subscriber lists as CSV files: import, with every bad row named by its line, and export.

Importing respects every opt-out: an address that unsubscribed, bounced or
was removed is skipped and reported, because consent cannot come from a list.
The `topics` and `cadence` columns carry each subscriber's choices, read
against the site's `[topics]` and `[digest] cadences`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal, TypeVar

from publisher.config import SiteConfig
from publisher.errors import SubscriberError
from publisher.mail.segments import normalise_topics
from publisher.mail.subscribers import (
    CadenceChoice,
    TopicsChoice,
    address_key,
    chosen_cadence,
    normalise_address,
    normalise_name,
    read_cadence,
    read_topics,
    record,
    refusal,
)
from publisher.model import SUBSCRIBER_STATUSES, Subscriber
from publisher.store import Store

logger = logging.getLogger(__name__)

Chosen = TypeVar("Chosen", TopicsChoice, CadenceChoice)

EXPORT_COLUMNS = ("email", "name", "status", "created_at", "topics", "cadence")
_BOM = b"\xef\xbb\xbf"
_DELIMITERS = (",", ";", "\t")


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


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each known column is in a file's rows (None: the file has none)."""

    email: int
    name: int | None
    status: int | None
    topics: int | None
    cadence: int | None


@dataclass(frozen=True, slots=True)
class _Row:
    """One good row, its values checked."""

    email: str
    name: str
    status: str
    topics: TopicsChoice
    cadence: CadenceChoice


def import_csv(
    store: Store, secret: bytes, path: Path, *, site: SiteConfig, now: datetime
) -> ImportReport:
    """Add every good row of a CSV file with an `email` (and optional `name`) column.

    Bad rows and duplicates within the file are reported and left out; the
    rest goes in (the caller's transaction makes that all or nothing). An
    address already present is not touched, whatever its status: one that
    unsubscribed or bounced, or was removed (its suppression entry), is
    counted and skipped with a line saying why, because consent to mail it
    again cannot come from a list. For the same reason an optional `status`
    column (as `export_csv` writes) is honoured: a new address marked
    unsubscribed or bounced is recorded so, never as active, and counted as
    skipped. Optional `topics` (slugs between spaces or commas; empty:
    everything) and `cadence` (empty: the site's default) columns give new
    subscribers their choices; those already present keep theirs, as they
    keep their name. Accepts a UTF-8 BOM, CRLF line ends and `,`, `;` or tab
    delimiters.

    :raises SubscriberError: for a missing or unreadable file, one that is not
        UTF-8, or a header without an `email` column; nothing is imported then.
    """
    name = str(path)
    records = _records(name, _read_text(path))
    header = next(records, None)
    if header is None:
        message = "is empty; expected a header row with an 'email' column, e.g. 'email,name'"
        raise SubscriberError(name, message)
    columns = _columns(name, header[1])

    existing = {address_key(s.email): s.status for s in store.iter_subscribers()}
    seen: dict[str, int] = {}
    problems: list[str] = []
    skipped_rows: list[str] = []
    counts = {"added": 0, "present": 0, "skipped": 0}
    for line, cells in records:
        where = f"{name}:{line}"
        try:
            row = _row(site, cells, columns, where)
        except SubscriberError as err:
            problems.append(str(err))
            continue
        key = address_key(row.email)
        if key in seen:
            problems.append(f"{where}: duplicate of line {seen[key]} ({row.email!r})")
            continue
        seen[key] = line
        outcome, why = _import_one(store, secret, row, existing.get(key), now=now, where=where)
        counts[outcome] += 1
        if why is not None:
            skipped_rows.append(f"{where}: {why}")
    return ImportReport(
        counts["added"], counts["present"], counts["skipped"], tuple(problems), tuple(skipped_rows)
    )


def _row(site: SiteConfig, cells: list[str], columns: _Columns, where: str) -> _Row:
    """One record's values, checked.

    :raises SubscriberError: naming *where* (the file and line) and the column.
    """
    email = normalise_address(_cell(cells, columns.email), where)
    name = normalise_name(_cell(cells, columns.name), where)
    status = _status(_cell(cells, columns.status), where)
    topics = _choice(read_topics, site, cells, columns.topics, f"{where}: topics")
    cadence = _choice(read_cadence, site, cells, columns.cadence, f"{where}: cadence")
    return _Row(email, name, status, topics, cadence)


def _choice(
    read: Callable[[SiteConfig, str], Chosen],
    site: SiteConfig,
    cells: list[str],
    column: int | None,
    where: str,
) -> Chosen:
    try:
        return read(site, _cell(cells, column))
    except ValueError as err:
        raise SubscriberError(where, str(err)) from None


def _import_one(
    store: Store,
    secret: bytes,
    row: _Row,
    status: str | None,
    *,
    now: datetime,
    where: str,
) -> tuple[Literal["added", "present", "skipped"], str | None]:
    """What importing one good row did, and why it was skipped if it was refused.

    *status* is that of the address's subscriber row, None when it has none.
    """
    if status == "active":
        return "present", None
    refused = refusal(store, secret, row.email, status)
    if refused is not None:
        return "skipped", refused
    # A new address marked unsubscribed or bounced (an export's status column)
    # is recorded so, never active, and no later import can subscribe it.
    added = store.get_subscriber(
        store.insert_subscriber(
            row.email, row.name, status=row.status, now=now, topics=row.topics, cadence=row.cadence
        )
    )
    change = f"→{row.status}"
    record(store, secret, added, row.email, change, f"imported from {where}", source="cli", now=now)
    return ("added", None) if row.status == "active" else ("skipped", None)


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


def _columns(name: str, header: list[str]) -> _Columns:
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

    def index(column: str) -> int | None:
        return names.index(column) if column in names else None

    return _Columns(
        names.index("email"), index("name"), index("status"), index("topics"), index("cadence")
    )


def _status(text: str, where: str) -> str:
    status = text.strip().lower() or "active"
    if status not in SUBSCRIBER_STATUSES:
        message = f"status {text!r} is not one of {', '.join(SUBSCRIBER_STATUSES)}"
        raise SubscriberError(where, message)
    return status


def _cell(row: list[str], column: int | None) -> str:
    return row[column] if column is not None and column < len(row) else ""


def export_csv(store: Store, stream: IO[str], *, site: SiteConfig) -> int:
    """Write every subscriber (any status) as CSV to *stream*; returns how many.

    Streamed from the database, so a long list is never held in memory. The
    columns are email, name, status, created_at (ISO 8601), topics and
    cadence: the choices as this site reads them now (`choice_cells`), so
    that importing the file gives everyone the same choices.
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
                *choice_cells(site, subscriber),
            )
        )
        count += 1
    return count


def choice_cells(site: SiteConfig, subscriber: Subscriber) -> tuple[str, str]:
    """The `topics` and `cadence` cells: what the subscriber gets under *site*'s config.

    Topics in the config's order between spaces, empty for everything; the
    cadence they chose, empty when they follow the default. A choice the
    site no longer offers is left out, as the digests leave it out.
    """
    topics = normalise_topics(site, subscriber.topics)
    cadence = chosen_cadence(site, subscriber.cadence)
    return " ".join(topics or ()), "" if cadence is None else str(cadence)
